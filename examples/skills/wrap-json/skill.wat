;; Source of skill.wasm (a WASI command module): reads JSON on stdin and writes
;; {"skill":"wrap","input":<stdin>} on stdout. Rebuild: python -c "import wasmtime,sys; open('skill.wasm','wb').write(wasmtime.wat2wasm(open('skill.wat').read()))"

(module
  
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  (memory (export "memory") 4)
  (data (i32.const 64) "{\"skill\":\"wrap\",\"input\":")   ;; 24 bytes
  (data (i32.const 128) "}")
  (data (i32.const 192) "wrap: done\n")                       ;; 11 bytes
  
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 16)))

  (func (export "_start")
    (local $end i32)
    (local.set $end (i32.const 4096))
    ;; read until EOF (n == 0) or the buffer (up to the end of memory) is full
    (block $eof
      (loop $more
        (i32.store (i32.const 0) (local.get $end))
        (i32.store (i32.const 4) (i32.sub (i32.const 262144) (local.get $end)))
        (br_if $eof (i32.eqz (i32.load (i32.const 4))))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16))
          (then (call $proc_exit (i32.const 70))))
        (br_if $eof (i32.eqz (i32.load (i32.const 16))))
        (local.set $end (i32.add (local.get $end) (i32.load (i32.const 16))))
        (br $more)))
    (drop (call $write (i32.const 1) (i32.const 64) (i32.const 24)))
    (drop (call $write (i32.const 1) (i32.const 4096) (i32.sub (local.get $end) (i32.const 4096))))
    (drop (call $write (i32.const 1) (i32.const 128) (i32.const 1)))
    (drop (call $write (i32.const 2) (i32.const 192) (i32.const 11)))))
