"""Wire servers that serve a simulator's protocol on real endpoints (TCP, pty, OPC UA)."""
