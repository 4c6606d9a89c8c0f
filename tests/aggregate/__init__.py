"""Tests of the aggregation layer (several profiles behind one stdio server)."""
