"""AWS X-Ray per service and service edge: request counts, error/fault rates, latency percentiles, slow traces."""
