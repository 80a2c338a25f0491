"""Use cases: load state, call the domain, save and publish through the infrastructure ports."""
