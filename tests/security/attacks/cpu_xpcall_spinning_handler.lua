-- class: cpu
-- description: xpcall whose message handler loops (Lua 5.4 runs it with hooks off after a hook error)
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
local function spin() while true do end end
xpcall(spin, spin)
xpcall(function() error("ordinary") end, spin)
