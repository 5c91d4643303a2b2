"""The routing simulator: the gateway's real strategies, statistics, circuit breakers
and hedging policy, driven in virtual time by simulated providers. See ``run.py``."""
