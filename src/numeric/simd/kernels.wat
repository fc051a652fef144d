;; WebAssembly (SIMD) forms of spg's hottest codec loops, bit-exact with the TypeScript
;; implementations they stand in for (src/numeric/fp16.ts, bytes.ts, group-quant.ts; tests
;; compare the two byte for byte). Compiled by scripts/compile-wasm.ts into kernels-wasm.ts.
;; Every pointer is a byte offset into the exported memory, which the caller sizes and fills.
(module
  (memory (export "memory") 1)

  ;; binary16 bits of float32 bits $f: numpy's npy_floatbits_to_halfbits, as fp16.ts ports it
  ;; (round to nearest even; overflow gives infinity, NaN stays NaN).
  (func $f2h (param $f i32) (result i32)
    (local $sign i32) (local $fexp i32) (local $fsig i32) (local $ret i32)
    (local.set $sign (i32.shr_u (i32.and (local.get $f) (i32.const 0x80000000)) (i32.const 16)))
    (local.set $fexp (i32.and (local.get $f) (i32.const 0x7f800000)))
    (if (i32.ge_u (local.get $fexp) (i32.const 0x47800000))
      (then
        (if (i32.eq (local.get $fexp) (i32.const 0x7f800000))
          (then
            (local.set $fsig (i32.and (local.get $f) (i32.const 0x007fffff)))
            (if (i32.ne (local.get $fsig) (i32.const 0))
              (then
                (local.set $ret (i32.add (i32.const 0x7c00) (i32.shr_u (local.get $fsig) (i32.const 13))))
                (if (i32.eq (local.get $ret) (i32.const 0x7c00))
                  (then (local.set $ret (i32.add (local.get $ret) (i32.const 1)))))
                (return (i32.add (local.get $sign) (local.get $ret)))))))
        (return (i32.add (local.get $sign) (i32.const 0x7c00)))))
    (if (i32.le_u (local.get $fexp) (i32.const 0x38000000))
      (then
        (if (i32.lt_u (local.get $fexp) (i32.const 0x33000000)) (then (return (local.get $sign))))
        (local.set $fsig
          (i32.shr_u
            (i32.add (i32.const 0x00800000) (i32.and (local.get $f) (i32.const 0x007fffff)))
            (i32.sub (i32.const 113) (i32.shr_u (local.get $fexp) (i32.const 23)))))
        (if (i32.or
              (i32.ne (i32.and (local.get $fsig) (i32.const 0x3fff)) (i32.const 0x1000))
              (i32.ne (i32.and (local.get $f) (i32.const 0x7ff)) (i32.const 0)))
          (then (local.set $fsig (i32.add (local.get $fsig) (i32.const 0x1000)))))
        (return (i32.add (local.get $sign) (i32.shr_u (local.get $fsig) (i32.const 13))))))
    (local.set $fsig (i32.and (local.get $f) (i32.const 0x007fffff)))
    (if (i32.ne (i32.and (local.get $fsig) (i32.const 0x3fff)) (i32.const 0x1000))
      (then (local.set $fsig (i32.add (local.get $fsig) (i32.const 0x1000)))))
    (i32.add
      (local.get $sign)
      (i32.add
        (i32.shr_u (local.get $fsig) (i32.const 13))
        (i32.shr_u (i32.sub (local.get $fexp) (i32.const 0x38000000)) (i32.const 13)))))

  ;; float32 bits of binary16 bits $h, as fp16.ts's table holds them (every NaN is 0x7fc00000).
  (func $h2fBits (param $h i32) (result i32)
    (local $em i32) (local $sign i32)
    (local.set $em (i32.and (local.get $h) (i32.const 0x7fff)))
    (local.set $sign (i32.shl (i32.and (local.get $h) (i32.const 0x8000)) (i32.const 16)))
    (if (i32.ge_u (local.get $em) (i32.const 0x7c00))
      (then
        (if (i32.eq (local.get $em) (i32.const 0x7c00))
          (then (return (i32.or (i32.const 0x7f800000) (local.get $sign)))))
        (return (i32.const 0x7fc00000))))
    (if (i32.lt_u (local.get $em) (i32.const 0x400))
      (then
        ;; subnormal: (2^-14 + m·2^-24) - 2^-14, exact
        (return
          (i32.or
            (i32.reinterpret_f32
              (f32.sub
                (f32.reinterpret_i32
                  (i32.add (i32.shl (local.get $em) (i32.const 13)) (i32.const 0x38800000)))
                (f32.const 0x1p-14)))
            (local.get $sign)))))
    (i32.or (i32.add (i32.shl (local.get $em) (i32.const 13)) (i32.const 0x38000000)) (local.get $sign)))

  (func $h2f (param $h i32) (result f64)
    (f64.promote_f32 (f32.reinterpret_i32 (call $h2fBits (local.get $h)))))

  ;; $n float32 at $src to binary16 bits at $dst; -1, or the index of the first value binary16
  ;; cannot hold (what follows it is not written). Eight values a step: for magnitudes below
  ;; 0x477fe000 (those that round to at most 65504), the normal range by rounding the mantissa
  ;; on the bits (ties to even, a carry moves into the exponent), below it by adding 0.5, whose
  ;; float32 rounding leaves the subnormal's bits in the mantissa (round to nearest even, exact).
  (func (export "halves") (param $src i32) (param $dst i32) (param $n i32) (result i32)
    (local $i i32) (local $v0 v128) (local $v1 v128) (local $a0 v128) (local $a1 v128) (local $h i32)
    (block $vectors
      (loop $next
        (br_if $vectors (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $n)))
        (local.set $v0 (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $v1 (v128.load offset=16 (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $a0 (v128.and (local.get $v0) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
        (local.set $a1 (v128.and (local.get $v1) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
        ;; a value that rounds past 65504, infinite or NaN: one at a time from here
        (br_if $vectors
          (v128.any_true
            (i32x4.ge_u
              (i32x4.max_u (local.get $a0) (local.get $a1))
              (v128.const i32x4 0x477fe000 0x477fe000 0x477fe000 0x477fe000))))
        ;; (the $half4 computation, written out: V8 does not inline calls between wasm functions)
        (v128.store
          (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 1)))
          (i16x8.narrow_i32x4_u
            (v128.or
            (v128.bitselect
              (i32x4.sub
                (f32x4.add (local.get $a0) (v128.const f32x4 0.5 0.5 0.5 0.5))
                (v128.const i32x4 0x3f000000 0x3f000000 0x3f000000 0x3f000000))
              (i32x4.sub
                (i32x4.shr_u
                  (i32x4.add
                    (i32x4.add (local.get $a0) (v128.const i32x4 0xfff 0xfff 0xfff 0xfff))
                    (v128.and (i32x4.shr_u (local.get $a0) (i32.const 13)) (v128.const i32x4 1 1 1 1)))
                  (i32.const 13))
                (v128.const i32x4 0x1c000 0x1c000 0x1c000 0x1c000))
              (i32x4.lt_u (local.get $a0) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000)))
            (v128.and (i32x4.shr_u (local.get $v0) (i32.const 16)) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)))
            (v128.or
            (v128.bitselect
              (i32x4.sub
                (f32x4.add (local.get $a1) (v128.const f32x4 0.5 0.5 0.5 0.5))
                (v128.const i32x4 0x3f000000 0x3f000000 0x3f000000 0x3f000000))
              (i32x4.sub
                (i32x4.shr_u
                  (i32x4.add
                    (i32x4.add (local.get $a1) (v128.const i32x4 0xfff 0xfff 0xfff 0xfff))
                    (v128.and (i32x4.shr_u (local.get $a1) (i32.const 13)) (v128.const i32x4 1 1 1 1)))
                  (i32.const 13))
                (v128.const i32x4 0x1c000 0x1c000 0x1c000 0x1c000))
              (i32x4.lt_u (local.get $a1) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000)))
            (v128.and (i32x4.shr_u (local.get $v1) (i32.const 16)) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next)))
    ;; the tail, and a block holding a value that cannot be stored, one value at a time
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $h (call $f2h (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))))
        (if (i32.eq (i32.and (local.get $h) (i32.const 0x7c00)) (i32.const 0x7c00))
          (then (return (local.get $i))))
        (i32.store16 (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 1))) (local.get $h))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $one)))
    (i32.const -1))

  ;; $n binary16 bits at $src to float32 at $dst, eight a step: normal values by rebasing the
  ;; exponent, subnormals as (2^-14 + m·2^-24) - 2^-14 (exact), infinities signed, NaN 0x7fc00000.
  (func (export "floats") (param $src i32) (param $dst i32) (param $n i32)
    (local $i i32) (local $v v128) (local $em v128) (local $sign v128) (local $o v128)
    (block $vectors
      (loop $next
        (br_if $vectors (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $n)))
        (local.set $v (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))))
        ;; (the $float4 computation, written out: V8 does not inline calls between wasm functions)
        (local.set $em (v128.and (i32x4.extend_low_i16x8_u (local.get $v)) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff)))
        (local.set $sign (i32x4.shl (v128.and (i32x4.extend_low_i16x8_u (local.get $v)) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16)))
        (local.set $o (i32x4.shl (local.get $em) (i32.const 13)))
        (v128.store
          (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (v128.bitselect
            (v128.bitselect
              (v128.or (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000) (local.get $sign))
              (v128.const i32x4 0x7fc00000 0x7fc00000 0x7fc00000 0x7fc00000)
              (i32x4.eq (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00)))
            (v128.or
              (v128.bitselect
                (f32x4.sub
                  (i32x4.add (local.get $o) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000))
                  (v128.const f32x4 0x1p-14 0x1p-14 0x1p-14 0x1p-14))
                (i32x4.add (local.get $o) (v128.const i32x4 0x38000000 0x38000000 0x38000000 0x38000000))
                (i32x4.lt_u (local.get $em) (v128.const i32x4 0x400 0x400 0x400 0x400)))
              (local.get $sign))
            (i32x4.ge_u (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00))))
        (local.set $em (v128.and (i32x4.extend_high_i16x8_u (local.get $v)) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff)))
        (local.set $sign (i32x4.shl (v128.and (i32x4.extend_high_i16x8_u (local.get $v)) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16)))
        (local.set $o (i32x4.shl (local.get $em) (i32.const 13)))
        (v128.store offset=16
          (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (v128.bitselect
            (v128.bitselect
              (v128.or (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000) (local.get $sign))
              (v128.const i32x4 0x7fc00000 0x7fc00000 0x7fc00000 0x7fc00000)
              (i32x4.eq (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00)))
            (v128.or
              (v128.bitselect
                (f32x4.sub
                  (i32x4.add (local.get $o) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000))
                  (v128.const f32x4 0x1p-14 0x1p-14 0x1p-14 0x1p-14))
                (i32x4.add (local.get $o) (v128.const i32x4 0x38000000 0x38000000 0x38000000 0x38000000))
                (i32x4.lt_u (local.get $em) (v128.const i32x4 0x400 0x400 0x400 0x400)))
              (local.get $sign))
            (i32x4.ge_u (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next)))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store
          (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (call $h2fBits (i32.load16_u (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $one))))

  ;; $n float32 at $src rounded to the nearest binary16 value, as float32 at $dst (in place
  ;; allowed); -1, or the index of the first value binary16 cannot hold.
  (func (export "roundHalves") (param $src i32) (param $dst i32) (param $n i32) (result i32)
    (local $i i32) (local $v v128) (local $h i32) (local $a v128) (local $sign v128) (local $em v128) (local $o v128)
    (block $vectors
      (loop $next
        (br_if $vectors (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
        (local.set $v (v128.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $a (v128.and (local.get $v) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
        (br_if $vectors (v128.any_true (i32x4.ge_u (local.get $a) (v128.const i32x4 0x477fe000 0x477fe000 0x477fe000 0x477fe000))))
        (local.set $sign (v128.and (local.get $v) (v128.const i32x4 0x80000000 0x80000000 0x80000000 0x80000000)))
        ;; binary16 bits (as in "halves", without the sign), then back (as in "floats", the sign kept on the float32)
        (local.set $em
          (v128.bitselect
            (i32x4.sub
              (f32x4.add (local.get $a) (v128.const f32x4 0.5 0.5 0.5 0.5))
              (v128.const i32x4 0x3f000000 0x3f000000 0x3f000000 0x3f000000))
            (i32x4.sub
              (i32x4.shr_u
                (i32x4.add
                  (i32x4.add (local.get $a) (v128.const i32x4 0xfff 0xfff 0xfff 0xfff))
                  (v128.and (i32x4.shr_u (local.get $a) (i32.const 13)) (v128.const i32x4 1 1 1 1)))
                (i32.const 13))
              (v128.const i32x4 0x1c000 0x1c000 0x1c000 0x1c000))
            (i32x4.lt_u (local.get $a) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000))))
        (local.set $o (i32x4.shl (local.get $em) (i32.const 13)))
        (v128.store
          (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
          (v128.or
            (v128.bitselect
              (f32x4.sub
                (i32x4.add (local.get $o) (v128.const i32x4 0x38800000 0x38800000 0x38800000 0x38800000))
                (v128.const f32x4 0x1p-14 0x1p-14 0x1p-14 0x1p-14))
              (i32x4.add (local.get $o) (v128.const i32x4 0x38000000 0x38000000 0x38000000 0x38000000))
              (i32x4.lt_u (local.get $em) (v128.const i32x4 0x400 0x400 0x400 0x400)))
            (local.get $sign)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $next)))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $h (call $f2h (i32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))))
        (if (i32.eq (i32.and (local.get $h) (i32.const 0x7c00)) (i32.const 0x7c00))
          (then (return (local.get $i))))
        (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2))) (call $h2fBits (local.get $h)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $one)))
    (i32.const -1))

  ;; group-quant.ts's encodeGroups over groups [0, $groups): float32 data at $data, members (i32)
  ;; at $members ($contiguous: members[m] is m, so a group's values are read four at a time), starts (i32, groups + 1) at $starts, widths (u8) at
  ;; $bits; metadata from $out, each width's stream from its state: i32[17] next byte, then
  ;; i32[17] pending bits, then i32[17] their count, at $state (updated). -1, or the first
  ;; group whose minimum or maximum binary16 cannot hold (nothing after it is written).
  (func (export "encodeGroups")
    (param $data i32) (param $members i32) (param $contiguous i32) (param $starts i32) (param $bits i32) (param $groups i32)
    (param $out i32) (param $state i32) (result i32)
    (local $g i32) (local $from i32) (local $to i32) (local $m i32) (local $x f32)
    (local $min f32) (local $max f32) (local $vmin v128) (local $vmax v128) (local $v v128)
    (local $width i32) (local $levels i32) (local $zeroBits i32) (local $scaleBits i32)
    (local $zero f64) (local $scale f64) (local $inverse f64) (local $span f64) (local $step f64)
    (local $meta i32) (local $at i32) (local $acc i32) (local $accBits i32) (local $code i32)
    (local $product f64) (local $above f64) (local $quotient f64) (local $offset f64)
    (local $vzero v128) (local $vinverse v128) (local $vlevels v128) (local $plo v128) (local $phi v128)
    (local $clo v128) (local $chi v128) (local $alo v128) (local $ahi v128) (local $codes v128) (local $acc64 i64)
    (local.set $meta (local.get $out))
    (block $finished
      (loop $group
        (br_if $finished (i32.ge_u (local.get $g) (local.get $groups)))
        (local.set $from (i32.load (i32.add (local.get $starts) (i32.shl (local.get $g) (i32.const 2)))))
        (local.set $to (i32.load offset=4 (i32.add (local.get $starts) (i32.shl (local.get $g) (i32.const 2)))))
        (if (i32.ne (local.get $to) (local.get $from))
          (then
            ;; minimum and maximum as `x < min`, `x > max` in member order find them (NaN never
            ;; taken): pmin/pmax per lane; a zero result is searched again in order (which of
            ;; -0 and +0 came first decides its sign)
            (local.set $min (f32.const inf))
            (local.set $max (f32.const -inf))
            (local.set $m (local.get $from))
            (if (local.get $contiguous)
              (then
                (local.set $vmin (v128.const f32x4 inf inf inf inf))
                (local.set $vmax (v128.const f32x4 -inf -inf -inf -inf))
                (block $vectors
                  (loop $four
                    (br_if $vectors (i32.gt_u (i32.add (local.get $m) (i32.const 4)) (local.get $to)))
                    (local.set $v (v128.load (i32.add (local.get $data) (i32.shl (local.get $m) (i32.const 2)))))
                    (local.set $vmin (f32x4.pmin (local.get $vmin) (local.get $v)))
                    (local.set $vmax (f32x4.pmax (local.get $vmax) (local.get $v)))
                    (local.set $m (i32.add (local.get $m) (i32.const 4)))
                    (br $four)))
                (local.set $min (f32x4.extract_lane 0 (local.get $vmin)))
                (local.set $x (f32x4.extract_lane 1 (local.get $vmin)))
                (if (f32.lt (local.get $x) (local.get $min)) (then (local.set $min (local.get $x))))
                (local.set $x (f32x4.extract_lane 2 (local.get $vmin)))
                (if (f32.lt (local.get $x) (local.get $min)) (then (local.set $min (local.get $x))))
                (local.set $x (f32x4.extract_lane 3 (local.get $vmin)))
                (if (f32.lt (local.get $x) (local.get $min)) (then (local.set $min (local.get $x))))
                (local.set $max (f32x4.extract_lane 0 (local.get $vmax)))
                (local.set $x (f32x4.extract_lane 1 (local.get $vmax)))
                (if (f32.gt (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))
                (local.set $x (f32x4.extract_lane 2 (local.get $vmax)))
                (if (f32.gt (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))
                (local.set $x (f32x4.extract_lane 3 (local.get $vmax)))
                (if (f32.gt (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))))
            (block $scanned
              (loop $one
                (br_if $scanned (i32.ge_u (local.get $m) (local.get $to)))
                (local.set $x (f32.load (i32.add (local.get $data)
                  (i32.shl (i32.load (i32.add (local.get $members) (i32.shl (local.get $m) (i32.const 2)))) (i32.const 2)))))
                (if (f32.lt (local.get $x) (local.get $min)) (then (local.set $min (local.get $x))))
                (if (f32.gt (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))
                (local.set $m (i32.add (local.get $m) (i32.const 1)))
                (br $one)))
            (if (i32.or (f32.eq (local.get $min) (f32.const 0)) (f32.eq (local.get $max) (f32.const 0)))
              (then
                (local.set $min (f32.const inf))
                (local.set $max (f32.const -inf))
                (local.set $m (local.get $from))
                (block $rescanned
                  (loop $again
                    (br_if $rescanned (i32.ge_u (local.get $m) (local.get $to)))
                    (local.set $x (f32.load (i32.add (local.get $data)
                      (i32.shl (i32.load (i32.add (local.get $members) (i32.shl (local.get $m) (i32.const 2)))) (i32.const 2)))))
                    (if (f32.lt (local.get $x) (local.get $min)) (then (local.set $min (local.get $x))))
                    (if (f32.gt (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))
                    (local.set $m (i32.add (local.get $m) (i32.const 1)))
                    (br $again)))))
            (if (i32.eqz
                  (i32.and
                    (f32.le (f32.abs (local.get $min)) (f32.const 65504))
                    (f32.le (f32.abs (local.get $max)) (f32.const 65504))))
              (then (return (local.get $g))))
            ;; zero: fp16 floor of the minimum; scale: fp16 ceil of span / levels, stepped up
            ;; until zero + levels·scale reaches the maximum (float64, as group-quant.ts)
            (local.set $width (i32.load8_u (i32.add (local.get $bits) (local.get $g))))
            (local.set $levels (i32.sub (i32.shl (i32.const 1) (local.get $width)) (i32.const 1)))
            (local.set $zeroBits (call $f2h (i32.reinterpret_f32 (local.get $min))))
            (if (f64.gt (call $h2f (local.get $zeroBits)) (f64.promote_f32 (local.get $min)))
              (then
                (local.set $zeroBits
                  (if (result i32) (i32.eqz (local.get $zeroBits))
                    (then (i32.const 0x8001))
                    (else
                      (if (result i32) (i32.and (local.get $zeroBits) (i32.const 0x8000))
                        (then (i32.add (local.get $zeroBits) (i32.const 1)))
                        (else (i32.sub (local.get $zeroBits) (i32.const 1)))))))))
            (local.set $zero (call $h2f (local.get $zeroBits)))
            (local.set $span (f64.sub (f64.promote_f32 (local.get $max)) (local.get $zero)))
            (local.set $scaleBits (i32.const 0))
            (if (f64.ne (local.get $span) (f64.const 0))
              (then
                (local.set $step (f64.div (local.get $span) (f64.convert_i32_s (local.get $levels))))
                (local.set $scaleBits (call $f2h (i32.reinterpret_f32 (f32.demote_f64 (local.get $step)))))
                (if (f64.lt (call $h2f (local.get $scaleBits)) (local.get $step))
                  (then
                    (local.set $scaleBits
                      (if (result i32) (i32.eq (local.get $scaleBits) (i32.const 0x8000))
                        (then (i32.const 1))
                        (else
                          (if (result i32) (i32.and (local.get $scaleBits) (i32.const 0x8000))
                            (then (i32.sub (local.get $scaleBits) (i32.const 1)))
                            (else (i32.add (local.get $scaleBits) (i32.const 1)))))))))
                (block $reached
                  (loop $step_up
                    (br_if $reached
                      (i32.eqz
                        (f64.lt
                          (f64.add (local.get $zero)
                            (f64.mul (f64.convert_i32_s (local.get $levels)) (call $h2f (local.get $scaleBits))))
                          (f64.promote_f32 (local.get $max)))))
                    (local.set $scaleBits (i32.add (local.get $scaleBits) (i32.const 1)))
                    (br $step_up)))))
            (local.set $scale (call $h2f (local.get $scaleBits)))
            (i32.store16 (local.get $meta) (local.get $scaleBits))
            (i32.store16 offset=2 (local.get $meta) (local.get $zeroBits))
            (local.set $meta (i32.add (local.get $meta) (i32.const 4)))
            ;; codes, least significant bit first into the width's stream; a byte still
            ;; filling is stored as it stands (the stream's next group rewrites it whole)
            (local.set $inverse (f64.div (f64.const 1) (local.get $scale)))
            (local.set $at (i32.load (i32.add (local.get $state) (i32.shl (local.get $width) (i32.const 2)))))
            (local.set $acc (i32.load offset=68 (i32.add (local.get $state) (i32.shl (local.get $width) (i32.const 2)))))
            (local.set $accBits (i32.load offset=136 (i32.add (local.get $state) (i32.shl (local.get $width) (i32.const 2)))))
            (local.set $m (local.get $from))
            ;; four codes a step where the group's values lie in a row (widths to 8): the same
            ;; float64 arithmetic, two lanes at a time; a step with a value near a tie (or NaN)
            ;; leaves the rest of the group to the loop below
            (if (i32.and
                  (i32.and (local.get $contiguous) (i32.le_u (local.get $width) (i32.const 8)))
                  (f64.ne (local.get $scale) (f64.const 0)))
              (then
                (local.set $vzero (f64x2.splat (local.get $zero)))
                (local.set $vinverse (f64x2.splat (local.get $inverse)))
                (local.set $vlevels (i32x4.splat (local.get $levels)))
                (local.set $acc64 (i64.extend_i32_u (local.get $acc)))
                (block $scalar
                  (loop $four
                    (br_if $scalar (i32.gt_u (i32.add (local.get $m) (i32.const 4)) (local.get $to)))
                    (local.set $v (v128.load (i32.add (local.get $data) (i32.shl (local.get $m) (i32.const 2)))))
                    (local.set $plo
                      (f64x2.add
                        (f64x2.mul (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (local.get $vzero)) (local.get $vinverse))
                        (v128.const f64x2 0.5 0.5)))
                    (local.set $phi
                      (f64x2.add
                        (f64x2.mul
                          (f64x2.sub
                            (f64x2.promote_low_f32x4
                              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
                            (local.get $vzero))
                          (local.get $vinverse))
                        (v128.const f64x2 0.5 0.5)))
                    (local.set $clo (i32x4.trunc_sat_f64x2_s_zero (local.get $plo)))
                    (local.set $chi (i32x4.trunc_sat_f64x2_s_zero (local.get $phi)))
                    (local.set $alo (f64x2.sub (local.get $plo) (f64x2.convert_low_i32x4_s (local.get $clo))))
                    (local.set $ahi (f64x2.sub (local.get $phi) (f64x2.convert_low_i32x4_s (local.get $chi))))
                    (br_if $scalar
                      (i32.eqz
                        (i64x2.all_true
                          (v128.and
                            (v128.and
                              (f64x2.gt (local.get $alo) (v128.const f64x2 1e-6 1e-6))
                              (f64x2.lt (local.get $alo) (f64x2.splat (f64.sub (f64.const 1) (f64.const 1e-6)))))
                            (v128.and
                              (f64x2.gt (local.get $ahi) (v128.const f64x2 1e-6 1e-6))
                              (f64x2.lt (local.get $ahi) (f64x2.splat (f64.sub (f64.const 1) (f64.const 1e-6)))))))))
                    (local.set $codes
                      (i32x4.min_s
                        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $clo) (local.get $chi))
                        (local.get $vlevels)))
                    (local.set $acc64
                      (i64.or
                        (local.get $acc64)
                        (i64.shl
                          (i64.or
                            (i64.or
                              (i64.extend_i32_u (i32x4.extract_lane 0 (local.get $codes)))
                              (i64.shl (i64.extend_i32_u (i32x4.extract_lane 1 (local.get $codes)))
                                (i64.extend_i32_u (local.get $width))))
                            (i64.or
                              (i64.shl (i64.extend_i32_u (i32x4.extract_lane 2 (local.get $codes)))
                                (i64.extend_i32_u (i32.shl (local.get $width) (i32.const 1))))
                              (i64.shl (i64.extend_i32_u (i32x4.extract_lane 3 (local.get $codes)))
                                (i64.extend_i32_u (i32.mul (local.get $width) (i32.const 3))))))
                          (i64.extend_i32_u (local.get $accBits)))))
                    (local.set $accBits (i32.add (local.get $accBits) (i32.shl (local.get $width) (i32.const 2))))
                    (block $stored
                      (loop $byte
                        (br_if $stored (i32.lt_s (local.get $accBits) (i32.const 8)))
                        (i64.store8 (i32.add (local.get $out) (local.get $at)) (local.get $acc64))
                        (local.set $at (i32.add (local.get $at) (i32.const 1)))
                        (local.set $acc64 (i64.shr_u (local.get $acc64) (i64.const 8)))
                        (local.set $accBits (i32.sub (local.get $accBits) (i32.const 8)))
                        (br $byte)))
                    (local.set $m (i32.add (local.get $m) (i32.const 4)))
                    (br $four)))
                (local.set $acc (i32.wrap_i64 (local.get $acc64)))))
            (block $coded
              (loop $each
                (br_if $coded (i32.ge_u (local.get $m) (local.get $to)))
                (local.set $code (i32.const 0))
                ;; group-quant.ts's groupCode, clamped to levels: roundHalfUp(offset / scale) from the
                ;; product with 1/scale where that lies clearly between two ties, else from the quotient
                (if (f64.ne (local.get $scale) (f64.const 0))
                  (then
                    (local.set $offset
                      (f64.sub
                        (f64.promote_f32 (f32.load (i32.add (local.get $data)
                          (i32.shl (i32.load (i32.add (local.get $members) (i32.shl (local.get $m) (i32.const 2)))) (i32.const 2)))))
                        (local.get $zero)))
                    (local.set $product (f64.add (f64.mul (local.get $offset) (local.get $inverse)) (f64.const 0.5)))
                    (local.set $code (i32.trunc_sat_f64_s (local.get $product)))
                    (local.set $above (f64.sub (local.get $product) (f64.convert_i32_s (local.get $code))))
                    (if (i32.eqz
                          (i32.and
                            (f64.gt (local.get $above) (f64.const 1e-6))
                            (f64.lt (local.get $above) (f64.sub (f64.const 1) (f64.const 1e-6)))))
                      (then
                        (local.set $quotient (f64.div (local.get $offset) (local.get $scale)))
                        (local.set $code (i32.trunc_sat_f64_s (f64.add (local.get $quotient) (f64.const 0.5))))
                        (if (f64.lt (local.get $quotient) (f64.sub (f64.convert_i32_s (local.get $code)) (f64.const 0.5)))
                          (then (local.set $code (i32.sub (local.get $code) (i32.const 1)))))))
                    (if (i32.gt_s (local.get $code) (local.get $levels))
                      (then (local.set $code (local.get $levels))))))
                (local.set $acc (i32.or (local.get $acc) (i32.shl (local.get $code) (local.get $accBits))))
                (local.set $accBits (i32.add (local.get $accBits) (local.get $width)))
                (block $flushed
                  (loop $flush
                    (br_if $flushed (i32.lt_s (local.get $accBits) (i32.const 8)))
                    (i32.store8 (i32.add (local.get $out) (local.get $at)) (local.get $acc))
                    (local.set $at (i32.add (local.get $at) (i32.const 1)))
                    (local.set $acc (i32.shr_u (local.get $acc) (i32.const 8)))
                    (local.set $accBits (i32.sub (local.get $accBits) (i32.const 8)))
                    (br $flush)))
                (local.set $m (i32.add (local.get $m) (i32.const 1)))
                (br $each)))
            (if (i32.gt_s (local.get $accBits) (i32.const 0))
              (then (i32.store8 (i32.add (local.get $out) (local.get $at)) (local.get $acc))))
            (i32.store (i32.add (local.get $state) (i32.shl (local.get $width) (i32.const 2))) (local.get $at))
            (i32.store offset=68 (i32.add (local.get $state) (i32.shl (local.get $width) (i32.const 2))) (local.get $acc))
            (i32.store offset=136 (i32.add (local.get $state) (i32.shl (local.get $width) (i32.const 2))) (local.get $accBits))))
        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        (br $group)))
    (i32.const -1))

  ;; group-quant.ts's decodeGroups: the region (metadata, then the streams) at $bytes, followed
  ;; by two zero bytes (a code's last bytes past the region read as 0, as getCode does); each
  ;; width's stream starts at the offset i32[17] at $state holds; float32 out at $out, at the
  ;; members' indices (i32 at $members).
  (func (export "decodeGroups")
    (param $bytes i32) (param $members i32) (param $starts i32) (param $bits i32) (param $groups i32)
    (param $out i32) (param $state i32)
    (local $g i32) (local $from i32) (local $to i32) (local $m i32) (local $width i32) (local $mask i32)
    (local $scale f64) (local $zero f64) (local $meta i32) (local $base i32) (local $index i32) (local $bit i32)
    (local $read i32)
    (local.set $meta (local.get $bytes))
    (block $finished
      (loop $group
        (br_if $finished (i32.ge_u (local.get $g) (local.get $groups)))
        (local.set $from (i32.load (i32.add (local.get $starts) (i32.shl (local.get $g) (i32.const 2)))))
        (local.set $to (i32.load offset=4 (i32.add (local.get $starts) (i32.shl (local.get $g) (i32.const 2)))))
        (if (i32.ne (local.get $to) (local.get $from))
          (then
            (local.set $scale (call $h2f (i32.load16_u (local.get $meta))))
            (local.set $zero (call $h2f (i32.load16_u offset=2 (local.get $meta))))
            (local.set $meta (i32.add (local.get $meta) (i32.const 4)))
            (local.set $width (i32.load8_u (i32.add (local.get $bits) (local.get $g))))
            (local.set $mask (i32.sub (i32.shl (i32.const 1) (local.get $width)) (i32.const 1)))
            (local.set $read (i32.add (local.get $state) (i32.shl (local.get $width) (i32.const 2))))
            (local.set $base (i32.add (local.get $bytes) (i32.load (local.get $read))))
            (local.set $index (i32.load offset=68 (local.get $read)))
            (i32.store offset=68 (local.get $read) (i32.add (local.get $index) (i32.sub (local.get $to) (local.get $from))))
            (local.set $m (local.get $from))
            (block $decoded
              (loop $each
                (br_if $decoded (i32.ge_u (local.get $m) (local.get $to)))
                (local.set $bit (i32.mul (local.get $index) (local.get $width)))
                (f32.store
                  (i32.add (local.get $out) (i32.shl (i32.load (i32.add (local.get $members) (i32.shl (local.get $m) (i32.const 2)))) (i32.const 2)))
                  (f32.demote_f64
                    (f64.add (local.get $zero)
                      (f64.mul
                        (f64.convert_i32_u
                          (i32.and
                            (i32.shr_u
                              (i32.or
                                (i32.load16_u (i32.add (local.get $base) (i32.shr_u (local.get $bit) (i32.const 3))))
                                (i32.shl
                                  (i32.load8_u offset=2 (i32.add (local.get $base) (i32.shr_u (local.get $bit) (i32.const 3))))
                                  (i32.const 16)))
                              (i32.and (local.get $bit) (i32.const 7)))
                            (local.get $mask)))
                        (local.get $scale)))))
                (local.set $index (i32.add (local.get $index) (i32.const 1)))
                (local.set $m (i32.add (local.get $m) (i32.const 1)))
                (br $each)))))
        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        (br $group))))

  ;; quant's transposed key gather (group-quant.ts gatherTransposed) on rows already in memory:
  ;; dst[c·rows + i] = src[i·cols + c], the float32 bits moved as i32 (nothing converted)
  (func (export "transpose") (param $src i32) (param $rows i32) (param $cols i32) (param $dst i32)
    (local $i i32) (local $c i32) (local $from i32) (local $to i32) (local $stride i32)
    (local.set $stride (i32.shl (local.get $rows) (i32.const 2)))
    (block $done
      (loop $each_row
        (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
        (local.set $from (i32.add (local.get $src) (i32.shl (i32.mul (local.get $i) (local.get $cols)) (i32.const 2))))
        (local.set $to (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2))))
        (local.set $c (i32.const 0))
        (block $row_done
          (loop $each_col
            (br_if $row_done (i32.ge_u (local.get $c) (local.get $cols)))
            (i32.store (local.get $to) (i32.load (local.get $from)))
            (local.set $from (i32.add (local.get $from) (i32.const 4)))
            (local.set $to (i32.add (local.get $to) (local.get $stride)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $each_col)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each_row))))

  ;; lowrank.ts's gramMatrix for $cols a multiple of 4: G = AᵀA [cols, cols] (float64 at $out)
  ;; of the row-major float32 block A [rows, cols] at $block. Each entry is the plain row-order
  ;; sum Σ_r A[r,i]·A[r,j] (float32 products are exact in float64), as there: 4x4 tiles of the
  ;; upper triangle, two entries to a lane pair.
  (func (export "gram") (param $block i32) (param $rows i32) (param $cols i32) (param $out i32)
    (local $i i32) (local $j i32) (local $o i32) (local $end i32) (local $row i32) (local $y v128)
    (local $ylo v128) (local $yhi v128) (local $x v128)
    (local $s00 v128) (local $s01 v128) (local $s10 v128) (local $s11 v128)
    (local $s20 v128) (local $s21 v128) (local $s30 v128) (local $s31 v128)
    (local $p i32) (local $q i32) (local $at i32)
    (local.set $end (i32.mul (local.get $rows) (local.get $cols)))
    (local.set $i (i32.const 0))
    (block $rows_done
      (loop $tile_i
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $cols)))
        (local.set $j (local.get $i))
        (block $cols_done
          (loop $tile_j
            (br_if $cols_done (i32.ge_u (local.get $j) (local.get $cols)))
            (local.set $s00 (v128.const f64x2 0 0)) (local.set $s01 (v128.const f64x2 0 0))
            (local.set $s10 (v128.const f64x2 0 0)) (local.set $s11 (v128.const f64x2 0 0))
            (local.set $s20 (v128.const f64x2 0 0)) (local.set $s21 (v128.const f64x2 0 0))
            (local.set $s30 (v128.const f64x2 0 0)) (local.set $s31 (v128.const f64x2 0 0))
            (local.set $o (i32.const 0))
            (block $summed
              (loop $each_row
                (br_if $summed (i32.ge_u (local.get $o) (local.get $end)))
                (local.set $row (i32.add (local.get $block) (i32.shl (local.get $o) (i32.const 2))))
                (local.set $y (v128.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2)))))
                (local.set $ylo (f64x2.promote_low_f32x4 (local.get $y)))
                (local.set $yhi (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $y) (local.get $y))))
                (local.set $x (f64x2.splat (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2)))))))
                (local.set $s00 (f64x2.add (local.get $s00) (f64x2.mul (local.get $x) (local.get $ylo))))
                (local.set $s01 (f64x2.add (local.get $s01) (f64x2.mul (local.get $x) (local.get $yhi))))
                (local.set $x (f64x2.splat (f64.promote_f32 (f32.load offset=4 (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2)))))))
                (local.set $s10 (f64x2.add (local.get $s10) (f64x2.mul (local.get $x) (local.get $ylo))))
                (local.set $s11 (f64x2.add (local.get $s11) (f64x2.mul (local.get $x) (local.get $yhi))))
                (local.set $x (f64x2.splat (f64.promote_f32 (f32.load offset=8 (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2)))))))
                (local.set $s20 (f64x2.add (local.get $s20) (f64x2.mul (local.get $x) (local.get $ylo))))
                (local.set $s21 (f64x2.add (local.get $s21) (f64x2.mul (local.get $x) (local.get $yhi))))
                (local.set $x (f64x2.splat (f64.promote_f32 (f32.load offset=12 (i32.add (local.get $row) (i32.shl (local.get $i) (i32.const 2)))))))
                (local.set $s30 (f64x2.add (local.get $s30) (f64x2.mul (local.get $x) (local.get $ylo))))
                (local.set $s31 (f64x2.add (local.get $s31) (f64x2.mul (local.get $x) (local.get $yhi))))
                (local.set $o (i32.add (local.get $o) (local.get $cols)))
                (br $each_row)))
            ;; entry (i + p, j + q) and its mirror (j + q, i + p); on a diagonal tile the mirrors are the same sums
            (local.set $p (i32.const 0))
            (block $stored
              (loop $each_p
                (br_if $stored (i32.ge_u (local.get $p) (i32.const 4)))
                (local.set $q (i32.const 0))
                (block $row_stored
                  (loop $each_q
                    (br_if $row_stored (i32.ge_u (local.get $q) (i32.const 4)))
                    (local.set $x
                      (select (result v128)
                        (select (result v128) (local.get $s00) (local.get $s01) (i32.lt_u (local.get $q) (i32.const 2)))
                        (select (result v128)
                          (select (result v128) (local.get $s10) (local.get $s11) (i32.lt_u (local.get $q) (i32.const 2)))
                          (select (result v128)
                            (select (result v128) (local.get $s20) (local.get $s21) (i32.lt_u (local.get $q) (i32.const 2)))
                            (select (result v128) (local.get $s30) (local.get $s31) (i32.lt_u (local.get $q) (i32.const 2)))
                            (i32.eq (local.get $p) (i32.const 2)))
                          (i32.eq (local.get $p) (i32.const 1)))
                        (i32.eqz (local.get $p))))
                    (if (i32.and (local.get $q) (i32.const 1))
                      (then (local.set $x (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $x) (local.get $x)))))
                    (local.set $at
                      (i32.add (i32.mul (i32.add (local.get $i) (local.get $p)) (local.get $cols)) (i32.add (local.get $j) (local.get $q))))
                    (f64.store (i32.add (local.get $out) (i32.shl (local.get $at) (i32.const 3))) (f64x2.extract_lane 0 (local.get $x)))
                    (local.set $at
                      (i32.add (i32.mul (i32.add (local.get $j) (local.get $q)) (local.get $cols)) (i32.add (local.get $i) (local.get $p))))
                    (f64.store (i32.add (local.get $out) (i32.shl (local.get $at) (i32.const 3))) (f64x2.extract_lane 0 (local.get $x)))
                    (local.set $q (i32.add (local.get $q) (i32.const 1)))
                    (br $each_q)))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (br $each_p)))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $tile_j)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tile_i))))

;; lowrank.ts's shiftedCholesky then inverseFrobenius2, every entry by the same operations in
  ;; the same order (so the same bits), in another order of entries, two lanes at a time:
  ;; L with G + shift·I = L Lᵀ column by column (the rows below a pivot are independent), kept
  ;; row-major at $work and column-major after it; then X = L⁻¹ row by row (the columns of a row
  ;; are independent; X's upper triangle is zero, so a lane may start its sum early by adding
  ;; +0), in the n·n float64 after those, zeroed by the caller; then ‖X‖_F² summed in the order
  ;; inverseFrobenius2 sums it (column by column). -1 at a pivot that is not positive.
  (func (export "inverseFrobenius2") (param $gram i32) (param $n i32) (param $shift f64) (param $work i32) (result f64)
    (local $L i32) (local $T i32) (local $X i32) (local $i i32) (local $j i32) (local $k i32) (local $c i32)
    (local $sum f64) (local $pivot f64) (local $a0 v128) (local $a1 v128) (local $scalar v128) (local $total f64)
    (local $value f64) (local $rowN i32)
    (local.set $rowN (i32.shl (local.get $n) (i32.const 3)))
    (local.set $L (local.get $work))
    (local.set $T (i32.add (local.get $L) (i32.mul (local.get $rowN) (local.get $n))))
    (local.set $X (i32.add (local.get $T) (i32.mul (local.get $rowN) (local.get $n))))
    ;; Cholesky, column j: the pivot, then the rows below it
    (block $factored
      (loop $each_j
        (br_if $factored (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $sum
          (f64.add
            (f64.load (i32.add (local.get $gram) (i32.add (i32.mul (local.get $j) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))))
            (local.get $shift)))
        (local.set $k (i32.const 0))
        (block $dotted
          (loop $each_k
            (br_if $dotted (i32.ge_u (local.get $k) (local.get $j)))
            (local.set $value (f64.load (i32.add (local.get $L) (i32.add (i32.mul (local.get $j) (local.get $rowN)) (i32.shl (local.get $k) (i32.const 3))))))
            (local.set $sum (f64.sub (local.get $sum) (f64.mul (local.get $value) (local.get $value))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $each_k)))
        (if (i32.eqz (f64.gt (local.get $sum) (f64.const 0))) (then (return (f64.const -1))))
        (local.set $pivot (f64.sqrt (local.get $sum)))
        (f64.store (i32.add (local.get $L) (i32.add (i32.mul (local.get $j) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))) (local.get $pivot))
        (f64.store (i32.add (local.get $T) (i32.add (i32.mul (local.get $j) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))) (local.get $pivot))
        (local.set $i (i32.add (local.get $j) (i32.const 1)))
        ;; four rows at a time: L[i][j] = (G[i][j] - Σ_k L[i][k]·L[j][k]) / L[j][j]
        (block $quads
          (loop $each_quad
            (br_if $quads (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
            (local.set $a0 (f64x2.splat (f64.load (i32.add (local.get $gram) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))))))
            (local.set $a0 (f64x2.replace_lane 1 (local.get $a0)
              (f64.load (i32.add (local.get $gram) (i32.add (i32.mul (i32.add (local.get $i) (i32.const 1)) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))))))
            (local.set $a1 (f64x2.splat (f64.load (i32.add (local.get $gram) (i32.add (i32.mul (i32.add (local.get $i) (i32.const 2)) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))))))
            (local.set $a1 (f64x2.replace_lane 1 (local.get $a1)
              (f64.load (i32.add (local.get $gram) (i32.add (i32.mul (i32.add (local.get $i) (i32.const 3)) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))))))
            (local.set $k (i32.const 0))
            (block $dotted4
              (loop $each_k4
                (br_if $dotted4 (i32.ge_u (local.get $k) (local.get $j)))
                (local.set $scalar (f64x2.splat (f64.load (i32.add (local.get $L) (i32.add (i32.mul (local.get $j) (local.get $rowN)) (i32.shl (local.get $k) (i32.const 3)))))))
                (local.set $a0 (f64x2.sub (local.get $a0)
                  (f64x2.mul (v128.load (i32.add (local.get $T) (i32.add (i32.mul (local.get $k) (local.get $rowN)) (i32.shl (local.get $i) (i32.const 3))))) (local.get $scalar))))
                (local.set $a1 (f64x2.sub (local.get $a1)
                  (f64x2.mul (v128.load offset=16 (i32.add (local.get $T) (i32.add (i32.mul (local.get $k) (local.get $rowN)) (i32.shl (local.get $i) (i32.const 3))))) (local.get $scalar))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $each_k4)))
            (local.set $a0 (f64x2.div (local.get $a0) (f64x2.splat (local.get $pivot))))
            (local.set $a1 (f64x2.div (local.get $a1) (f64x2.splat (local.get $pivot))))
            (v128.store (i32.add (local.get $T) (i32.add (i32.mul (local.get $j) (local.get $rowN)) (i32.shl (local.get $i) (i32.const 3)))) (local.get $a0))
            (v128.store offset=16 (i32.add (local.get $T) (i32.add (i32.mul (local.get $j) (local.get $rowN)) (i32.shl (local.get $i) (i32.const 3)))) (local.get $a1))
            (f64.store (i32.add (local.get $L) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))) (f64x2.extract_lane 0 (local.get $a0)))
            (f64.store (i32.add (local.get $L) (i32.add (i32.mul (i32.add (local.get $i) (i32.const 1)) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))) (f64x2.extract_lane 1 (local.get $a0)))
            (f64.store (i32.add (local.get $L) (i32.add (i32.mul (i32.add (local.get $i) (i32.const 2)) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))) (f64x2.extract_lane 0 (local.get $a1)))
            (f64.store (i32.add (local.get $L) (i32.add (i32.mul (i32.add (local.get $i) (i32.const 3)) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))) (f64x2.extract_lane 1 (local.get $a1)))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $each_quad)))
        ;; the rows left, one at a time
        (block $singles
          (loop $each_single
            (br_if $singles (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $sum (f64.load (i32.add (local.get $gram) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3))))))
            (local.set $k (i32.const 0))
            (block $dotted1
              (loop $each_k1
                (br_if $dotted1 (i32.ge_u (local.get $k) (local.get $j)))
                (local.set $sum (f64.sub (local.get $sum)
                  (f64.mul
                    (f64.load (i32.add (local.get $L) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $k) (i32.const 3)))))
                    (f64.load (i32.add (local.get $L) (i32.add (i32.mul (local.get $j) (local.get $rowN)) (i32.shl (local.get $k) (i32.const 3))))))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $each_k1)))
            (local.set $value (f64.div (local.get $sum) (local.get $pivot)))
            (f64.store (i32.add (local.get $L) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $j) (i32.const 3)))) (local.get $value))
            (f64.store (i32.add (local.get $T) (i32.add (i32.mul (local.get $j) (local.get $rowN)) (i32.shl (local.get $i) (i32.const 3)))) (local.get $value))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $each_single)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $each_j)))
    ;; X = L⁻¹, row i: X[i][i] = 1 / L[i][i]; X[i][c] = -(Σ_{k=c}^{i-1} L[i][k]·X[k][c]) / L[i][i]
    (local.set $i (i32.const 0))
    (block $inverted
      (loop $each_i
        (br_if $inverted (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $pivot (f64.load (i32.add (local.get $L) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $i) (i32.const 3))))))
        (f64.store (i32.add (local.get $X) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $i) (i32.const 3))))
          (f64.div (f64.const 1) (local.get $pivot)))
        (local.set $c (i32.const 0))
        (block $quads
          (loop $each_quad
            (br_if $quads (i32.gt_u (i32.add (local.get $c) (i32.const 4)) (local.get $i)))
            (local.set $a0 (v128.const f64x2 0 0))
            (local.set $a1 (v128.const f64x2 0 0))
            (local.set $k (local.get $c))
            (block $dotted4
              (loop $each_k4
                (br_if $dotted4 (i32.ge_u (local.get $k) (local.get $i)))
                (local.set $scalar (f64x2.splat (f64.load (i32.add (local.get $L) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $k) (i32.const 3)))))))
                (local.set $a0 (f64x2.add (local.get $a0)
                  (f64x2.mul (local.get $scalar) (v128.load (i32.add (local.get $X) (i32.add (i32.mul (local.get $k) (local.get $rowN)) (i32.shl (local.get $c) (i32.const 3))))))))
                (local.set $a1 (f64x2.add (local.get $a1)
                  (f64x2.mul (local.get $scalar) (v128.load offset=16 (i32.add (local.get $X) (i32.add (i32.mul (local.get $k) (local.get $rowN)) (i32.shl (local.get $c) (i32.const 3))))))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $each_k4)))
            (v128.store (i32.add (local.get $X) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $c) (i32.const 3))))
              (f64x2.div (f64x2.neg (local.get $a0)) (f64x2.splat (local.get $pivot))))
            (v128.store offset=16 (i32.add (local.get $X) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $c) (i32.const 3))))
              (f64x2.div (f64x2.neg (local.get $a1)) (f64x2.splat (local.get $pivot))))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $each_quad)))
        (block $singles
          (loop $each_single
            (br_if $singles (i32.ge_u (local.get $c) (local.get $i)))
            (local.set $sum (f64.const 0))
            (local.set $k (local.get $c))
            (block $dotted1
              (loop $each_k1
                (br_if $dotted1 (i32.ge_u (local.get $k) (local.get $i)))
                (local.set $sum (f64.add (local.get $sum)
                  (f64.mul
                    (f64.load (i32.add (local.get $L) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $k) (i32.const 3)))))
                    (f64.load (i32.add (local.get $X) (i32.add (i32.mul (local.get $k) (local.get $rowN)) (i32.shl (local.get $c) (i32.const 3))))))))
                (local.set $k (i32.add (local.get $k) (i32.const 1)))
                (br $each_k1)))
            (f64.store (i32.add (local.get $X) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $c) (i32.const 3))))
              (f64.div (f64.neg (local.get $sum)) (local.get $pivot)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $each_single)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each_i)))
    ;; ‖X‖_F², column by column from the diagonal down, as inverseFrobenius2 adds them
    (local.set $c (i32.const 0))
    (block $summed
      (loop $each_c
        (br_if $summed (i32.ge_u (local.get $c) (local.get $n)))
        (local.set $i (local.get $c))
        (block $column_done
          (loop $each_row
            (br_if $column_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $value (f64.load (i32.add (local.get $X) (i32.add (i32.mul (local.get $i) (local.get $rowN)) (i32.shl (local.get $c) (i32.const 3))))))
            (local.set $total (f64.add (local.get $total) (f64.mul (local.get $value) (local.get $value))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $each_row)))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $each_c)))
    (local.get $total))

  ;; spg's magnitude cut, its largest |x| over the float32 block at $block ($n values), as
  ;; elementwise.ts's maxAbs: NaN is never the largest (pmax keeps the running value, as
  ;; `a > max` does). Four values a step.
  (func (export "maxAbs") (param $block i32) (param $n i32) (result f32)
    (local $i i32) (local $vmax v128) (local $max f32) (local $x f32)
    (local.set $vmax (v128.const f32x4 0 0 0 0))
    (block $vectors
      (loop $four
        (br_if $vectors (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
        (local.set $vmax (f32x4.pmax (local.get $vmax)
          (f32x4.abs (v128.load (i32.add (local.get $block) (i32.shl (local.get $i) (i32.const 2)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $four)))
    (local.set $max (f32x4.extract_lane 0 (local.get $vmax)))
    (local.set $x (f32x4.extract_lane 1 (local.get $vmax)))
    (if (f32.gt (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))
    (local.set $x (f32x4.extract_lane 2 (local.get $vmax)))
    (if (f32.gt (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))
    (local.set $x (f32x4.extract_lane 3 (local.get $vmax)))
    (if (f32.gt (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (f32.abs (f32.load (i32.add (local.get $block) (i32.shl (local.get $i) (i32.const 2))))))
        (if (f32.gt (local.get $x) (local.get $max)) (then (local.set $max (local.get $x))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $one)))
    (local.get $max))

  ;; The magnitude cut's survivors among those values: how many x have |x| >= $cut (float64,
  ;; as the TypeScript compares a float32 with a number) and x != 0; NaN is never counted
  ;; (every comparison with it is false). Four values a step, lanes -1 where counted.
  (func (export "survivorCount") (param $block i32) (param $n i32) (param $cut f64) (result i32)
    (local $i i32) (local $a v128) (local $vcut v128) (local $count v128) (local $x f32) (local $total i32)
    (local.set $vcut (f64x2.splat (local.get $cut)))
    (local.set $count (v128.const i32x4 0 0 0 0))
    (block $vectors
      (loop $four
        (br_if $vectors (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
        (local.set $a (f32x4.abs (v128.load (i32.add (local.get $block) (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $count
          (i32x4.sub (local.get $count)
            (v128.and
              (f32x4.ne (local.get $a) (v128.const f32x4 0 0 0 0))
              (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
                (f64x2.ge (f64x2.promote_low_f32x4 (local.get $a)) (local.get $vcut))
                (f64x2.ge
                  (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $a) (local.get $a)))
                  (local.get $vcut))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $four)))
    (local.set $total
      (i32.add
        (i32.add (i32x4.extract_lane 0 (local.get $count)) (i32x4.extract_lane 1 (local.get $count)))
        (i32.add (i32x4.extract_lane 2 (local.get $count)) (i32x4.extract_lane 3 (local.get $count)))))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (f32.abs (f32.load (i32.add (local.get $block) (i32.shl (local.get $i) (i32.const 2))))))
        (if (i32.and (f64.ge (f64.promote_f32 (local.get $x)) (local.get $cut)) (f32.ne (local.get $x) (f32.const 0)))
          (then (local.set $total (i32.add (local.get $total) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $one)))
    (local.get $total))
)
