"""Integration tests: real servers on 127.0.0.1 driven through the proxy."""
