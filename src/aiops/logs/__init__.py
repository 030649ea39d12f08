"""CloudWatch Logs per service: error/warning counts per 5 minutes and top error signatures."""
