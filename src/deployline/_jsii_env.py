"""Quiet jsii's Node.js end-of-life banner before aws_cdk is imported.

jsii silences its end-of-life warning only for the Node major versions listed, comma-separated, in
JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION (a plain "1" does not work); the deprecated and
untested warnings take any non-empty value. The user's own settings win.
"""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "14,16,18,19,20,21,23")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
