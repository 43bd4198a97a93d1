"""Entry point of the GitHub Action (action.yml runs it with the runner's Python)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lambda3.action.run import main  # noqa: E402 - needs the path above

if __name__ == "__main__":
    sys.exit(main())
