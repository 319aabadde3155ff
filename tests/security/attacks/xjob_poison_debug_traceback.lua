-- class: cross_job
-- description: lupa calls the global debug.traceback as its message handler; a script's debug global must not reach it
-- expect: status=failed type=runtime
-- limits: wall_clock_seconds=10
-- message_contains: after poisoning
debug = {traceback = function() while true do end end}
_G.debug = debug
error("after poisoning")
