"""The container healthcheck: exit 0 when the server is ready (GET /ready is 200).

With --alias-may-be-missing, also while the registry has no version with the server's alias
(`/ready` is 503 with `"alias_missing": true`): a canary server of a model that has no canary yet
is as healthy as it can be. Stdlib only, so it runs in the image as it is.
"""

import json
import sys
import urllib.error
import urllib.request

URL = "http://127.0.0.1:8000/ready"


def main(argv: list[str], url: str = URL) -> int:
    try:
        urllib.request.urlopen(url, timeout=3)
        return 0
    except urllib.error.HTTPError as exc:
        if "--alias-may-be-missing" not in argv:
            return 1
        try:
            return 0 if json.loads(exc.read()).get("alias_missing") is True else 1
        except ValueError:
            return 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
