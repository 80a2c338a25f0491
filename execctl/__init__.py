"""execctl: the operator CLI of the execution service (README, Operator tools). A client of ``/api/v1`` only."""
