--[[
The host side of the sandbox: limits, the bridge to the Python driver, and the coroutine
plumbing that carries bridge requests out of user coroutines.

This chunk runs once per LuaRuntime, on the real globals, before any script code. Everything
it needs is captured in locals here; script code runs in a separate environment without
`debug`, so none of these upvalues (the Python callbacks included) is reachable from a script.

Arguments: `host` (Python callbacks; each returns `ok, ...` and never raises) and `config`.
Returns: `core` (used by env.lua to build the script environment) and `control` (called by
the Python driver).

Rules for this file: never apply an operator (==, <, .., #, t[k] on foreign tables, tostring)
to a value the script controls: metamethods would run script code from the host. Use rawequal,
rawget, rawlen and type instead.
]]

local host, config = ...

local error, type, select, tostring, tonumber = error, type, select, tostring, tonumber
local rawequal, rawget, rawlen = rawequal, rawget, rawlen
local real_setmetatable, real_getmetatable = setmetatable, getmetatable
local real_pcall, real_xpcall, real_load = pcall, xpcall, load
local pack, unpack = table.pack, table.unpack
local format = string.format
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_status, co_running, co_close = coroutine.status, coroutine.running, coroutine.close
local co_isyieldable = coroutine.isyieldable
local sethook, raw_metatable, traceback = debug.sethook, debug.getmetatable, debug.traceback
local getinfo = debug.getinfo
local string_rep, table_move = string.rep, table.move
local math_type = math.type

local clock = host.clock
local deadline = config.deadline
local max_instructions = config.instructions
local PERIOD = config.period
local messages = config.messages
local MEMORY_ERROR = "not enough memory"

local BRIDGE = {} -- first value of every yield that is a request for the driver
local tripped, tripped_message = nil, nil -- the limit that ended the run (sticky)
local counted = 0 -- instructions counted by the hook
local main_co = nil -- the coroutine running the script's main chunk
local script_env = nil
local script_source = nil -- "=<chunk name>" of the script

-- Script lines ---------------------------------------------------------------------------------

local error_lines = real_setmetatable({}, { __mode = "k" }) -- bridge error value -> line
local last_index_line = nil -- where the script last looked up an app.integrations name

-- The script line that called the function `depth` levels up from the caller of call_line.
-- When that function was tail-called (`return app.integrations.x.f()`) the caller's frame
-- is gone: fall back to the line that looked the function up.
local function call_line(depth)
  local called = getinfo(depth + 1, "t")
  if called ~= nil and not called.istailcall then
    local caller = getinfo(depth + 2, "Sl")
    if caller ~= nil and caller.source == script_source then
      return caller.currentline
    end
  end
  return last_index_line
end

-- Remember the script line indexing app.integrations (called from an __index function).
local function note_index()
  local info = getinfo(3, "Sl")
  if info ~= nil and info.source == script_source then
    last_index_line = info.currentline
  end
end

-- Raise a bridge error value, remembering the script line it belongs to.
local function raise_at(err, line)
  if line ~= nil then
    error_lines[err] = line
  end
  error(err, 0)
end

-- Limits ------------------------------------------------------------------------------------

local hook

local function set_trip(kind)
  if tripped == nil then
    tripped = kind
    tripped_message = rawget(messages, kind) or kind
  end
end

-- The count hook, installed on every coroutine the script runs in. Once a limit has tripped it
-- re-arms itself to fire on every instruction, so `pcall` cannot swallow the limit.
hook = function()
  if tripped == nil then
    counted = counted + PERIOD
    if counted >= max_instructions then
      set_trip("instruction_limit")
    else
      local now = clock()
      if now == nil then
        set_trip("aborted")
      elseif now >= deadline then
        set_trip("wall_clock_limit")
      end
    end
  end
  if tripped ~= nil then
    sethook(co_running(), hook, "", 1)
    error(tripped_message, 0)
  end
end

-- Trip a limit (sticky) and raise it in the running script.
local function trip(kind)
  set_trip(kind)
  sethook(co_running(), hook, "", 1)
  error(tripped_message, 0)
end

-- Charge work done inside one C function (table.move, string.rep) to the instruction budget.
local function charge(n)
  if n > 0 then
    if n > max_instructions then
      n = max_instructions -- also keeps math.huge out of the count
    end
    counted = counted + n
    if counted >= max_instructions then
      trip("instruction_limit")
    end
  end
end

-- A refused allocation is an error `pcall` could catch; make it sticky like the other limits.
local function after_protected(ok, ...)
  if not ok and rawequal((...), MEMORY_ERROR) then
    trip("memory_limit")
  end
  return ok, ...
end

-- Values shared with the Python side ----------------------------------------------------------

local OBJECT_MT = { __name = "json.object" }
local ARRAY_MT = { __name = "json.array" }
local NULL_MT = {
  __name = "json.null",
  __metatable = "json.null",
  __tostring = function()
    return "null"
  end,
  __newindex = function()
    error("json.null is read-only", 2)
  end,
}
local NULL = real_setmetatable({}, NULL_MT)

local string_methods = nil -- the script's string table, set by env.lua

local function message_of(e)
  local m = rawget(e, "message")
  if type(m) == "string" then
    return m
  end
  return "error"
end

-- Error values raised by the bridge: tables with type/message/... whose string form is the
-- message. String methods and `..` work on them as on the message, for scripts written
-- against runners whose errors were plain strings.
local ERROR_MT = {
  __name = "error",
  __metatable = "error",
  __tostring = message_of,
  __concat = function(a, b)
    if type(a) == "table" then
      a = message_of(a)
    end
    if type(b) == "table" then
      b = message_of(b)
    end
    return a .. b
  end,
  __index = function(e, key)
    local f = string_methods and rawget(string_methods, key)
    if type(f) == "function" then
      return function(self, ...)
        if type(self) == "table" then
          self = message_of(self)
        end
        return f(self, ...)
      end
    end
    return nil
  end,
}

local function new_error(etype, message, operation, status, title, detail, retry_after)
  return real_setmetatable({
    type = etype,
    message = message,
    operation = operation,
    status = status,
    title = title,
    detail = detail,
    retry_after = retry_after,
  }, ERROR_MT)
end

-- Python callbacks ----------------------------------------------------------------------------

-- Turn a callback's `false, code, ...` into a Lua error raised at `level` (as for `error`)
-- relative to the function returned here.
local function wrap_host(fn, level)
  level = (level or 1) + 1
  return function(...)
    local r = pack(fn(...))
    if r[1] then
      return unpack(r, 2, r.n)
    end
    local code = r[2]
    if code == "limit" then
      trip(r[3])
    elseif code == "abort" then
      trip("aborted")
    elseif code == "raise" then
      error(new_error(r[3], r[4]), 0)
    end
    error(r[3], level)
  end
end

-- The bridge ----------------------------------------------------------------------------------

local function answer(line, ok, ...)
  if ok then
    return ...
  end
  local code, payload = ...
  if code == "limit" then
    trip(payload)
  end
  raise_at(payload, line)
end

-- The one door out: yield a request to the driver and return its answer (or raise its error).
-- From inside user coroutines the request travels up through resume_through below.
local function request(...)
  if tripped ~= nil then
    trip(tripped)
  end
  if not co_isyieldable() then
    error(
      "integration calls and sleep() cannot run inside a callback called from C "
        .. "(table.sort comparators, string.gsub functions, __tostring, ...)",
      3
    )
  end
  return answer(call_line(2), co_yield(BRIDGE, ...))
end

-- Coroutines ----------------------------------------------------------------------------------

local function new_thread(f)
  local co = co_create(f)
  sethook(co, hook, "", tripped ~= nil and 1 or PERIOD)
  return co
end

-- Resume `co`; while it yields bridge requests, pass them up (yielding the running coroutine
-- in turn) and hand each answer back down.
local function resume_through(co, ...)
  local r = pack(co_resume(co, ...))
  while r[1] and rawequal(r[2], BRIDGE) do
    r = pack(co_resume(co, co_yield(BRIDGE, unpack(r, 3, r.n))))
  end
  return r
end

local function bad_argument(n, fname, expected, value)
  error(format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, type(value)), 3)
end

local sb_coroutine = {}

function sb_coroutine.create(f)
  if type(f) ~= "function" then
    bad_argument(1, "create", "function", f)
  end
  return new_thread(f)
end

function sb_coroutine.resume(co, ...)
  if type(co) ~= "thread" then
    bad_argument(1, "resume", "coroutine", co)
  end
  local r = resume_through(co, ...)
  return after_protected(unpack(r, 1, r.n))
end

function sb_coroutine.wrap(f)
  if type(f) ~= "function" then
    bad_argument(1, "wrap", "function", f)
  end
  local co = new_thread(f)
  return function(...)
    local r = resume_through(co, ...)
    if r[1] then
      return unpack(r, 2, r.n)
    end
    local e = r[2]
    if rawequal(e, MEMORY_ERROR) then
      trip("memory_limit")
    end
    -- After a limit, hooks may be off in that thread: never run its __close handlers then.
    if tripped == nil and co_status(co) == "dead" then
      co_close(co)
    end
    if type(e) == "string" then
      error(e, 2)
    end
    error(e, 0)
  end
end

function sb_coroutine.yield(...)
  if rawequal(co_running(), main_co) then
    error("attempt to yield from outside a coroutine", 2)
  end
  return co_yield(...)
end

function sb_coroutine.running()
  local co = co_running()
  return co, rawequal(co, main_co)
end

function sb_coroutine.isyieldable(co)
  if co == nil then
    co = co_running()
  elseif type(co) ~= "thread" then
    bad_argument(1, "isyieldable", "coroutine", co)
  end
  if rawequal(co, main_co) then
    return false
  end
  return co_isyieldable(co)
end

function sb_coroutine.status(co)
  if type(co) ~= "thread" then
    bad_argument(1, "status", "coroutine", co)
  end
  return co_status(co)
end

function sb_coroutine.close(co)
  if type(co) ~= "thread" then
    bad_argument(1, "close", "coroutine", co)
  end
  if tripped ~= nil then
    return false, tripped_message
  end
  local status = co_status(co)
  if status ~= "suspended" and status ~= "dead" then
    error(format("cannot close a %s coroutine", status), 2)
  end
  return co_close(co)
end

-- Replacements for base functions -------------------------------------------------------------

local function sb_pcall(f, ...)
  return after_protected(real_pcall(f, ...))
end

local function sb_xpcall(f, handler, ...)
  if type(handler) ~= "function" then
    bad_argument(2, "xpcall", "function", handler)
  end
  -- After a limit error the message handler would run with hooks off: never call it then.
  local function guarded(e)
    if tripped ~= nil then
      return e
    end
    return handler(e)
  end
  return after_protected(real_xpcall(f, guarded, ...))
end

local function sb_getmetatable(v)
  local mt = real_getmetatable(v)
  if rawequal(mt, OBJECT_MT) or rawequal(mt, ARRAY_MT) then
    return nil
  end
  return mt
end

local function sb_setmetatable(t, mt)
  if type(t) ~= "table" then
    bad_argument(1, "setmetatable", "table", t)
  end
  if mt ~= nil and type(mt) ~= "table" then
    bad_argument(2, "setmetatable", "nil or table", mt)
  end
  local old = raw_metatable(t)
  if old ~= nil and rawget(old, "__metatable") ~= nil then
    error("cannot change a protected metatable", 2)
  end
  -- Finalizers run with hooks off (and after the run): no limit could stop them.
  if mt ~= nil and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not available in the sandbox", 2)
  end
  return real_setmetatable(t, mt)
end

local function sb_load(chunk, chunkname, mode, ...)
  local env = script_env
  if select("#", ...) > 0 then
    env = ...
  end
  if type(chunk) ~= "string" and type(chunk) ~= "function" then
    bad_argument(1, "load", "string", chunk)
  end
  if chunkname ~= nil and type(chunkname) ~= "string" then
    bad_argument(2, "load", "string", chunkname)
  end
  -- Text chunks only, whatever `mode` says: binary chunks can break the VM.
  return after_protected(real_load(chunk, chunkname, "t", env))
end

local function sb_string_rep(s, n, sep)
  local count = n
  if type(count) == "string" then
    count = tonumber(count)
  end
  if type(count) == "number" and count > 0 then
    if type(s) == "string" and rawlen(s) == 0 and (sep == nil or (type(sep) == "string" and rawlen(sep) == 0)) then
      return "" -- Lua 5.4 would loop `n` times here, even for n = 2^53
    end
    charge(count)
  end
  return string_rep(s, n, sep)
end

local function sb_table_move(a1, f, e, t, a2)
  if type(f) == "number" and type(e) == "number" and e >= f then
    charge(e - f + 1)
  end
  if a2 == nil then
    return table_move(a1, f, e, t)
  end
  return table_move(a1, f, e, t, a2)
end

-- Control (called from Python) ----------------------------------------------------------------

local control = {}

function control.load_main(source, chunkname)
  script_source = chunkname
  local fn, err = real_load(source, chunkname, "t", script_env)
  if fn == nil then
    return false, err
  end
  main_co = co_create(fn)
  sethook(main_co, hook, "", PERIOD)
  return true
end

-- Resume the script with the driver's answer. Returns one of
--   "request", kind, ...    the script waits for the driver to perform a request
--   "done", results         the chunk returned (results is packed: n = count)
--   "error", value          the chunk raised `value`
function control.resume(...)
  local r = pack(co_resume(main_co, ...))
  if not r[1] then
    return "error", r[2]
  end
  if co_status(main_co) == "dead" then
    local results = { n = r.n - 1 }
    for i = 2, r.n do
      results[i - 1] = r[i]
    end
    return "done", results
  end
  if rawequal(r[2], BRIDGE) then
    return "request", unpack(r, 3, r.n)
  end
  return "error", "attempt to yield from outside a coroutine"
end

function control.limit_state()
  return tripped, counted
end

function control.traceback()
  return traceback(main_co)
end

-- What an error value that reached the top says about itself, without running its metamethods.
function control.error_info(e)
  local t = type(e)
  if t == "string" or t == "number" then
    return t, format("%s", e)
  end
  if t == "table" then
    local message = rawget(e, "message")
    if type(message) ~= "string" then
      message = nil
    end
    local etype = nil
    if rawequal(raw_metatable(e), ERROR_MT) then
      etype = rawget(e, "type")
      if type(etype) ~= "string" then
        etype = nil
      end
    end
    local line = rawget(error_lines, e)
    if math_type(line) ~= "integer" then
      line = nil
    end
    return t, message, etype, line
  end
  return t
end

-- Kind of a table for the converter (0 plain, 1 json.object, 2 json.array, 3 json.null,
-- 4 bridge error) and its address, for cycle detection.
function control.table_info(t)
  local mt = raw_metatable(t)
  local kind = 0
  if mt == nil then
    kind = 0
  elseif rawequal(mt, OBJECT_MT) then
    kind = 1
  elseif rawequal(mt, ARRAY_MT) then
    kind = 2
  elseif rawequal(t, NULL) then
    kind = 3
  elseif rawequal(mt, ERROR_MT) then
    kind = 4
  end
  return kind, format("%p", t)
end

-- Mark a fresh table (made by Python) as a JSON object (1) or array (2).
function control.mark(t, kind)
  if kind == 1 then
    return real_setmetatable(t, OBJECT_MT)
  end
  return real_setmetatable(t, ARRAY_MT)
end

control.new_error = new_error
control.null = NULL
control.type = type

function control.set_env(env, strings)
  script_env = env
  string_methods = strings
end

local core = {
  BRIDGE = BRIDGE,
  NULL = NULL,
  OBJECT_MT = OBJECT_MT,
  ARRAY_MT = ARRAY_MT,
  new_error = new_error,
  wrap_host = wrap_host,
  request = request,
  trip = trip,
  call_line = call_line,
  note_index = note_index,
  raise_at = raise_at,
  coroutine = sb_coroutine,
  pcall = sb_pcall,
  xpcall = sb_xpcall,
  getmetatable = sb_getmetatable,
  setmetatable = sb_setmetatable,
  load = sb_load,
  string_rep = sb_string_rep,
  table_move = sb_table_move,
  set_env = control.set_env,
}

return core, control
