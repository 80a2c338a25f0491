"""Venue adapters: the adapter protocol (protocol.py) and its ccxt implementation (ccxt_venue.py).

An adapter is a separate deployable (one per venue) that shares only the protocol models with the service.
"""
