"""The HTTP API, shared by the Lambda functions and `solver serve`.

`build_app(parts, deps)` assembles routers on a powertools REST resolver; `openapi_document()` is
the committed docs/openapi.json. Importing this package connects to nothing and imports neither
mini-swe-agent nor litellm: the API Lambdas stay small.
"""

from solver_core.api.app import ALL_PARTS, Part, build_app, openapi_document
from solver_core.api.deps import ApiDeps, ApiLimits, current_deps, use_deps

__all__ = ["ALL_PARTS", "ApiDeps", "ApiLimits", "Part", "build_app", "current_deps", "openapi_document", "use_deps"]
