"""The parts of the boto3-compatible client behind :mod:`deltaglider.client`, by
responsibility. Private: users import from :mod:`deltaglider.client` (or ``deltaglider``).

- :mod:`.core`: what every part stands on (the engine, error translation, refusals).
- :mod:`.shapes`: response shapes (ETags, ``DeltaGliderInfo``, ``ResponseMetadata``,
  ``StreamingBody``).
- :mod:`.errors`: our errors as botocore ClientErrors with S3's codes.
- :mod:`.params`: request parameters checked and read (body checks, conditions, ranges, tags,
  copy sources, URL encoding).
- :mod:`.listing`: listings and paginators.
- :mod:`.botocore`: botocore's models, the paginator, S3's operation names, exceptions.
- :mod:`.transfer`: boto3's managed transfers.
- :mod:`.simple`: the simple API (upload, download, verify), batches, bucket stats.
- :mod:`.buckets`: bucket operations, ACLs, presigned URLs and their temporary copies.
- :mod:`.docs`: the documented differences from boto3, as data.
- :mod:`.factory`: the store and engine ``create_client`` opens.

Nothing here imports :mod:`deltaglider.client`: the face imports its parts, never the reverse.
"""
