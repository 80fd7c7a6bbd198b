"""Local stand-ins for the SaaS APIs the platform calls, following their documented contracts."""
