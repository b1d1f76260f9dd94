"""Template tags of flagstream: ``{% load flagstream %}``."""
