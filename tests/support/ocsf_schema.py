"""The JSON Schema of an OCSF class, generated from the OCSF schema as schema.ocsf.io publishes it (the copies
packaged by `ocsf-json-schema`), with every referenced object embedded."""

from __future__ import annotations

import functools
from typing import Any

from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema


@functools.cache
def class_schema(version: str, class_uid: int, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
    return schema.get_class_schema(class_name=schema.lookup_class_name_from_uid(class_uid), profiles=list(profiles))
