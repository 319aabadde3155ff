--[[
The JSON encoder behind json.encode, print/dump and the returned values.

It runs in the script's own context and is instrumented like a script, so a value that would
take long to encode (a table whose subtables are shared 2^21 times, say) spends the script's
instructions, memory and wall clock like any other Lua work, and the host never walks script
tables for it. It reads tables with raw access only (no __index, __pairs, __len, __tostring).

The text is what Python's `json.dumps(value, ensure_ascii=False, sort_keys=True)` gave for
the converted value (compact separators, or `indent=2` when pretty):
- a table whose keys are exactly 1..n is an array; other tables are objects with their keys
  sorted (numbers first, in numeric order, as Lua prints them; then strings, bytewise);
- json.object()/json.array() marks decide for empty and sparse tables; json.null is null;
- a string that is not UTF-8 becomes base64 under the key `body` (with `body_encoding`) and
  gets replacement characters elsewhere; floats are written as Python's repr writes them.
In "display" mode (print, dump) nothing fails: functions show as "<function>", cycles as
"<cycle>", NaN as NaN. Otherwise such values raise an error naming where they are.

Every encoding has a byte budget; past it the encoder trips the limit it was given (output,
memory, result_size).

Arguments: the tick function (consumed by the prologue), then `deps`. Returns `encode`.
]]

local _, deps = ...

local type, tonumber, error, next, rawget, rawequal, rawlen = type, tonumber, error, next, rawget, rawequal, rawlen
local raw_metatable = debug.getmetatable
local math_type, huge = math.type, math.huge
local format, gsub, sub, rep, match = string.format, string.gsub, string.sub, string.rep, string.match
local concat, sort = table.concat, table.sort
local utf8_len = utf8.len
local NULL, OBJECT_MT, ARRAY_MT = deps.NULL, deps.OBJECT_MT, deps.ARRAY_MT
local trip, fix_utf8, base64 = deps.trip, deps.fix_utf8, deps.base64

local MAX_DEPTH = 200

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
for c = 0, 31 do
  local ch = string.char(c)
  if ESCAPES[ch] == nil then
    ESCAPES[ch] = format("\\u%04x", c)
  end
end

-- Errors are raised as this marker table (with a message and a path) for the callers to word.
local ENCODE_ERROR = {}

local function quote(s)
  if utf8_len(s) == nil then
    s = fix_utf8(s)
  end
  return '"' .. gsub(s, '[%z\1-\31"\\]', ESCAPES) .. '"'
end

-- Python's repr of a finite float: the shortest digits that read back as the same float
-- (at most 17; when 15 are enough, dropping trailing zeros gives the shortest), in fixed
-- notation for exponents from -4 to 15 and in scientific notation otherwise.
local SUBNORMAL = 2.2250738585072014e-308

local function float_text(x)
  local text
  -- Subnormals carry fewer digits: search from the shortest there.
  for precision = (x > -SUBNORMAL and x < SUBNORMAL) and 0 or 14, 16 do
    text = format("%." .. precision .. "e", x)
    if tonumber(text) == x then
      break
    end
  end
  local sign, first, rest, exp = match(text, "^(-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = gsub(first .. rest, "0+$", "")
  if digits == "" then
    digits = "0"
  end
  local e = tonumber(exp)
  if e >= -4 and e < 16 then
    local point = e + 1 -- digits before the decimal point
    if point <= 0 then
      return sign .. "0." .. rep("0", -point) .. digits
    elseif point >= #digits then
      return sign .. digits .. rep("0", point - #digits) .. ".0"
    end
    return sign .. sub(digits, 1, point) .. "." .. sub(digits, point + 1)
  end
  local mantissa = sub(digits, 1, 1)
  if #digits > 1 then
    mantissa = mantissa .. "." .. sub(digits, 2)
  end
  local exponent = e < 0 and format("-%02d", -e) or format("+%02d", e)
  return sign .. mantissa .. "e" .. exponent
end

local function number_text(x, display)
  if math_type(x) == "integer" then
    return format("%d", x)
  end
  if x ~= x or x == huge or x == -huge then
    if display then
      return x ~= x and "NaN" or (x > 0 and "Infinity" or "-Infinity")
    end
    return nil
  end
  return float_text(x)
end

local function key_text(k)
  local t = type(k)
  if t == "string" then
    return k
  elseif t == "number" then
    if math_type(k) == "integer" then
      return format("%d", k)
    end
    return format("%.14g", k)
  elseif t == "boolean" then
    return k and "true" or "false"
  end
  return nil
end

-- Sort groups: numbers, then strings, then anything else (by its text).
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  local ga = ta == "number" and 0 or ta == "string" and 1 or 2
  local gb = tb == "number" and 0 or tb == "string" and 1 or 2
  if ga ~= gb then
    return ga < gb
  end
  if ga == 2 then
    return (key_text(a) or "") < (key_text(b) or "")
  end
  return a < b
end

-- encode(value, display, pretty, max_bytes, limit) -> text
--   raises {ENCODE_ERROR, message, path} for values with no JSON form (not in display mode)
--   and trips `limit` past `max_bytes`.
local function encode(value, display, pretty, max_bytes, limit)
  -- Output: small pieces in `buf`, joined every BUF pieces into `chunks` (memory stays close
  -- to the size of the text).
  local chunks, nchunks, buf, n, size = {}, 0, {}, 0, 0
  local active = {}
  local path = {}
  local quoted_keys = {}

  local function put(s)
    n = n + 1
    buf[n] = s
    size = size + #s
    if n >= 256 then
      nchunks = nchunks + 1
      chunks[nchunks] = concat(buf, "", 1, n)
      n = 0
      if size > max_bytes then
        trip(limit)
      end
    end
  end

  local function put_string(s)
    if utf8_len(s) == nil then
      s = fix_utf8(s)
    end
    put('"')
    put((gsub(s, '[%z\1-\31"\\]', ESCAPES)))
    put('"')
  end

  local function fail(message, depth)
    error({ ENCODE_ERROR, message, "$" .. concat(path, "", 1, depth) }, 0)
  end

  local function indent(depth)
    if pretty then
      put("\n" .. rep("  ", depth))
    end
  end

  local walk

  local function member(v, text, k, depth, first)
    if not first then
      put(",")
    end
    indent(depth + 1)
    local q = quoted_keys[text]
    if q == nil then
      q = quote(text)
      quoted_keys[text] = q
    end
    put(q)
    put(pretty and ": " or ":")
    path[depth + 1] = "." .. text
    local x = rawget(v, k)
    if text == "body" and type(x) == "string" and utf8_len(x) == nil then
      put('"' .. base64(x) .. '"')
      put(",")
      indent(depth + 1)
      put(pretty and '"body_encoding": "base64"' or '"body_encoding":"base64"')
      return true
    end
    walk(x, depth + 1)
    return false
  end

  local function object(v, keys, count, strings_only, depth)
    put("{")
    local encoded_body = false
    if strings_only then
      sort(keys)
      for i = 1, count do
        local k = keys[i]
        if not (encoded_body and k == "body_encoding") then
          encoded_body = member(v, k, k, depth, i == 1) or encoded_body
        end
      end
    else
      sort(keys, key_less)
      -- Keys that print the same (1 and "1"): the last one in sorted order wins, as in a dict.
      local texts, last = {}, {}
      for i = 1, count do
        local text = key_text(keys[i])
        if text == nil then
          if not display then
            fail(format("cannot convert a table with a %s key to JSON", type(keys[i])), depth)
          end
          text = "<" .. type(keys[i]) .. ">"
        end
        texts[i] = text
        last[text] = i
      end
      local first = true
      for i = 1, count do
        local text = texts[i]
        if last[text] == i and not (encoded_body and text == "body_encoding") then
          encoded_body = member(v, text, keys[i], depth, first) or encoded_body
          first = false
        end
      end
    end
    indent(depth)
    put("}")
  end

  local function array(v, size_n, depth)
    put("[")
    for i = 1, size_n do
      if i > 1 then
        put(",")
      end
      indent(depth + 1)
      path[depth + 1] = "[" .. i .. "]"
      walk(rawget(v, i), depth + 1)
    end
    indent(depth)
    put("]")
  end

  walk = function(v, depth)
    local t = type(v)
    if t == "string" then
      put_string(v)
    elseif t == "number" then
      local text = number_text(v, display)
      if text == nil then
        fail("cannot convert NaN or infinity to JSON", depth)
      end
      put(text)
    elseif t == "boolean" then
      put(v and "true" or "false")
    elseif t == "nil" or rawequal(v, NULL) then
      put("null")
    elseif t ~= "table" then
      if not display then
        fail(format("cannot convert a %s to JSON", t), depth)
      end
      put('"<' .. t .. '>"')
    elseif active[v] then
      if not display then
        fail("cannot convert a table that contains itself", depth)
      end
      put('"<cycle>"')
    elseif depth >= MAX_DEPTH then
      if not display then
        fail(format("value nested deeper than %d levels", MAX_DEPTH), depth)
      end
      put('"<too deep>"')
    else
      local mt = raw_metatable(v)
      local marked_object, marked_array = rawequal(mt, OBJECT_MT), rawequal(mt, ARRAY_MT)
      -- Sequences (keys 1..n) are the common case: try that first, without collecting keys.
      local count = 0
      for _ in next, v do
        count = count + 1
      end
      if count == 0 then
        put(marked_object and "{}" or "[]")
        return
      end
      active[v] = true
      if not marked_object and not marked_array and rawget(v, count) ~= nil and rawlen(v) == count then
        local sequence = true
        for i = 1, count do
          if rawget(v, i) == nil then
            sequence = false
            break
          end
        end
        if sequence then
          array(v, count, depth)
          active[v] = nil
          return
        end
      end
      local keys, integers, strings_only, max_key = {}, true, true, 0
      local i = 0
      for k in next, v do
        i = i + 1
        keys[i] = k
        if integers then
          if math_type(k) == "integer" and k >= 1 then
            if k > max_key then
              max_key = k
            end
          else
            integers = false
          end
        end
        if strings_only and type(k) ~= "string" then
          strings_only = false
        end
      end
      if marked_array then
        if not integers then
          if not display then
            local bad
            for j = 1, count do
              if math_type(keys[j]) ~= "integer" or keys[j] < 1 then
                bad = keys[j]
                break
              end
            end
            fail(format("a table marked json.array has the key '%s'", key_text(bad) or type(bad)), depth)
          end
          object(v, keys, count, strings_only, depth)
        elseif max_key > 2 * count + 1000 then
          fail("a table marked json.array is too sparse", depth)
        else
          array(v, max_key, depth)
        end
      else
        object(v, keys, count, strings_only, depth)
      end
      active[v] = nil
    end
  end

  walk(value, 0)
  if size > max_bytes then
    trip(limit)
  end
  nchunks = nchunks + 1
  chunks[nchunks] = concat(buf, "", 1, n)
  return concat(chunks, "", 1, nchunks)
end

-- The message of an encoding error (nil for other errors).
local function encode_error(e)
  if type(e) == "table" and rawequal(rawget(e, 1), ENCODE_ERROR) then
    local message, path = e[2], e[3]
    if path ~= "$" then
      message = message .. " at " .. path
    end
    return message
  end
  return nil
end

return { encode = encode, encode_error = encode_error }
