-- The same job done in nginx, the OpenResty way: verify `X-MediaConvert-Signature:
-- sha256=<hex HMAC-SHA256 of the raw body>` in the access phase, through LuaJIT's FFI to
-- libcrypto, compare in constant time (CRYPTO_memcmp), answer 401 on a mismatch; nginx then
-- proxies the request. bench/run.py runs it as the `nginx+lua` contestant.
local ffi = require "ffi"
local bit = require "bit"

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
int CRYPTO_memcmp(const void *a, const void *b, size_t len);
]]

local crypto = ffi.load("crypto")
local sha256 = crypto.EVP_sha256()
local secret = os.getenv("WEBHOOK_SECRET") or error("WEBHOOK_SECRET is not set")
local mac = ffi.new("unsigned char[32]")
local mac_len = ffi.new("unsigned int[1]")
local hex = ffi.new("char[64]")
local digits = ffi.new("const char[17]", "0123456789abcdef")

local function deny()
  ngx.status = 401
  ngx.header["Content-Type"] = "application/json"
  ngx.print('{"error":"invalid signature"}')
  return ngx.exit(401)
end

local function body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then
    return data
  end
  local file = ngx.req.get_body_file()
  if not file then
    return ""
  end
  local f = io.open(file, "rb")
  if not f then
    return nil
  end
  data = f:read("*a")
  f:close()
  return data
end

return function()
  local data = body()
  local sig = ngx.var.http_x_mediaconvert_signature
  if not data or not sig or #sig ~= 71 or sig:sub(1, 7) ~= "sha256=" then
    return deny()
  end
  crypto.HMAC(sha256, secret, #secret, data, #data, mac, mac_len)
  for i = 0, 31 do
    local b = mac[i]
    hex[2 * i] = digits[bit.rshift(b, 4)]
    hex[2 * i + 1] = digits[bit.band(b, 15)]
  end
  if crypto.CRYPTO_memcmp(hex, ffi.cast("const char *", sig) + 7, 64) ~= 0 then
    return deny()
  end
end
