"""Reads `weir runs --json` and fails unless its latest run succeeded with every result seen:
no simulated node, nothing unavailable, records counted."""
import json
import sys

run = json.load(sys.stdin)[0]
problems = []
if run["state"] != "succeeded":
    problems.append(f"state is {run['state']}")
if run.get("simulated"):
    problems.append(f"it was simulated: {run['simulated']}")
if run.get("unavailable"):
    problems.append(f"results unseen: {run['unavailable']}")
if not run.get("topics", {}).get("smoke-raw"):
    problems.append(f"no records counted: {run.get('topics')}")
if problems:
    sys.exit(f"run {run['id']}: " + "; ".join(problems))
print(f"run {run['id']}: every result seen, topics {run['topics']}")
