"""A separate publisher process: ``python publisher_child.py <catalog uri> <record>...``."""

from __future__ import annotations

import sys

from cellauto.records import catalog

if __name__ == "__main__":
    site = catalog(sys.argv[1])
    for path in sys.argv[2:]:
        print(site.publish(path).action, flush=True)
