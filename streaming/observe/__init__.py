"""What an operator sees of the streams: the context of log lines, metrics and traces."""
