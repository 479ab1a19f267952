"""Byte formats shared by the butlerd daemon and its clients.

Nothing here imports butlerd or clients: the wire formats are the contract
between them, and both sides depend on it, never the other way round.
"""
