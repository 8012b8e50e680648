"""`python -m solver_core.api`: print the OpenAPI document (docs/openapi.json is this output)."""

import json

from solver_core.api import openapi_document

print(json.dumps(openapi_document(), indent=2))
