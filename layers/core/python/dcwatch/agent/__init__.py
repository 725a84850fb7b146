"""The site agent: one per site, the site's voter in the three-voter quorum (see fencing.md).

`quorum` decides (pure), `heartbeat` is the signed peer protocol (pure), `report` is the event it
publishes, `policy` its IAM policy, `state` its file on disk. `runner` is the loop that ties its parts
together: `voters` (lease renewal and heartbeat, side by side), `fence` (the fence and its audit),
`reporting` (its own checks and the report), `credentials` (its secrets), `calls` (calls with a deadline).
"""
