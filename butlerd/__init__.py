"""butlerd: a LogDog Butler daemon, byte-compatible with LUCI's Go logdog_butler."""

__version__ = "0.1.0"
