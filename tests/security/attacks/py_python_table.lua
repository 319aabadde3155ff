-- class: python_escape
-- description: lupa's python table and its gadgets are gone
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
-- result: [null, null, null, false]
return python, rawget(_G, "python"), _ENV.python, (pcall(function() return python.eval("1") end))
