"""In-tree adapters. Every module below registers itself on import (see harness/api/adapters.py)."""
