-- class: memory
-- description: regex.match_all of every character of 4 MB (a table per match)
-- expect: status=limit_exceeded limit=memory|instructions
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=20
-- max_seconds: 10
local all = regex.match_all(string.rep("ab", 2000000), "(a)(b)")
return #all
