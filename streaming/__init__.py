"""Stream long-running AI workflows to web clients over SSE and WebSocket."""
