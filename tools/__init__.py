"""Developer tools (not shipped in the wheel): the demo-corpus generator and the GPU check."""
