"""Upstream transports: legacy HTTP+SSE and Streamable HTTP behind one small interface."""
