"""MCP peers the integration tests run the proxy against: the official SDK server and a fault server."""
