"""Test servers on 127.0.0.1: raw-socket misbehaving servers and a fault-injecting event sink."""
