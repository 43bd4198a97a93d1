"""The example function: a greeting that uses a dependency, a custom layer and local code."""
import os

import requests
import yaml
from greetings import greet
from hello_lib import shout

CODE_REVISION = 1


def handler(event, context):
    name = (event or {}).get("name", "world")
    message = greet(name, os.environ.get("GREETING_STYLE", "friendly"))
    return {
        "message": message,
        "loud": shout(message),
        "revision": CODE_REVISION,
        "version": context.function_version,
        "libraries": {"requests": requests.__version__, "yaml": yaml.__version__},
    }
