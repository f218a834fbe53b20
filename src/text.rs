//! Numbers in messages: counts with their noun in the right number, and
//! rates to three significant figures.

/// `x` to three significant figures with an SI prefix for thousands and
/// up: 7 587 928.64 → "7.59M", 999.96 → "1.00k", 12.345 → "12.3",
/// 0.5 → "0.500".
pub fn si(x: f64) -> String {
    const PREFIX: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Round to three significant figures first: the rounding may carry
    // into the next power of ten (999.96 → 1000).
    let digits = |a: f64| a.log10().floor() as i32;
    let step = 10f64.powi(digits(x.abs()) - 2);
    let a = (x.abs() / step).round() * step;
    let d = digits(a);
    let e = d.div_euclid(3).clamp(0, PREFIX.len() as i32 - 1);
    let decimals = (2 - (d - 3 * e)).max(0) as usize;
    format!("{sign}{:.decimals$}{}", a / 1000f64.powi(e), PREFIX[e as usize])
}

/// `n` and a noun, singular for one: `count(1, "cell")` is "1 cell",
/// `count(3, "cell")` "3 cells".
pub fn count(n: u64, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}
