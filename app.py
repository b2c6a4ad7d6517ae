"""The web chat: Gradio UI and the HTTP API in one process on 127.0.0.1:7860.

    python app.py [--host 127.0.0.1] [--port 7860] [--documents documents] [--index index]

Thin on purpose: the page is built by `qa.serve.chat` on qa's public API (`qa serve` runs the same).
"""

from __future__ import annotations

import sys

from qa.serve.chat import main

if __name__ == "__main__":
    sys.exit(main())
