"""NAB (Numenta Anomaly Benchmark) scoring and runner for the anomaly detector."""
