"""Infrastructure: configuration, logging, Google Cloud / Redis clients and the adapters behind the ports."""
