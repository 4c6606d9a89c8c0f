"""mcp-sse-proxy: a stdio MCP server that relays every message to a remote MCP server over HTTP."""

__version__ = "0.2.0"
