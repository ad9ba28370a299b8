"""Organization-scale sweep simulation, calibrated on the real sweep worker (`make bench-org`).

- `facts`: what AWS documents (EC2 request token buckets, Lambda/SQS scaling, DynamoDB on-demand, Security
  Hub's import rate, prices), each with its source and the date it was read, and the assumptions that have
  no AWS source (latencies, how much of each bucket the account's other tools use), named as such.
- `calibrate`: runs the real SweepWorkerFunction handler on representative account-regions against a moto
  server and records each unit's calls (operation, response size, overlap) and its CPU time.
- `unit`: one unit's time from its recorded calls: on moto (the calibration check) and on AWS (latency per
  API family, EC2's token buckets, botocore's retries and adaptive rate limiter, Lambda's CPU share).
- `fleet`: a whole sweep: the sweep function queueing units, the SQS event source scaling the worker,
  batches, cold starts, assumed roles, the sweep summary's transactions; wall time, peak rates, throttles,
  GB-seconds and cost.
"""
