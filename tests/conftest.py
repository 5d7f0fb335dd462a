import os
import sys

# tests import their shared builders from tests/helpers.py
sys.path.insert(0, os.path.dirname(__file__))
