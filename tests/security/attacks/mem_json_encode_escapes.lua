-- class: memory
-- description: json.encode of 6 MB of control characters (36 MB of escapes); lupa deadlocked here
-- expect: status=limit_exceeded limit=memory
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=10
-- max_seconds: 5
return #json.encode(string.rep("\1", 6000000))
