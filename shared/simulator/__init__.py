"""A simulated crypto exchange: a pure, deterministic, in-process matching engine with Binance-spot semantics.

``model`` holds the vocabulary (Binance's enums, symbol and fee configuration, read-only views and the
``ExchangeError`` carrying Binance's ``code`` and ``msg``); ``book`` the price-time-priority order book on
integers; ``engine`` the ``Engine`` (symbols, accounts, balances, fees, orders, matching, stop triggers);
``market`` a seeded background ``Market`` of other participants that keeps the books alive. No I/O, no
clock, no threads: time is the ``now_ms`` argument of every call that needs it.
"""
