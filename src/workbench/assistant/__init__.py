"""The assistant: runs that answer from the workspace's knowledge and act through tools,
each leaving a complete record of what was asked, what answered, and why."""
