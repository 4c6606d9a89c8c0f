"""Aggregation: several profiles shown to the client as one MCP server (`Aggregator`)."""
