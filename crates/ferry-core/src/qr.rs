//! QR codes of tickets, as SVG, so a phone camera can pick a ticket off the screen.

use crate::error::Error;

/// Renders `text` as an SVG QR code (dark modules on a light background, with a quiet zone).
pub fn qr_svg(text: &str) -> Result<String, Error> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L)
        .map_err(|e| Error::Config(format!("cannot make a QR code of this text: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(240, 240)
        .dark_color(qrcode::render::svg::Color("#111111"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_svg() {
        let svg = super::qr_svg("ferry://receive/blobabc").unwrap();
        assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"));
        assert!(svg.contains("<path") || svg.contains("<rect"));
        assert!(
            super::qr_svg(&"x".repeat(10_000)).is_err(),
            "too long for a QR code"
        );
    }
}
