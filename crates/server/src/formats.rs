//! Alert formats for other systems: CAP 1.2 (OASIS Common Alerting Protocol)
//! XML and GeoJSON (RFC 7946).
//!
//! # References
//! - OASIS, Common Alerting Protocol Version 1.2, 1 July 2010.
//! - IETF RFC 7946, The GeoJSON Format, 2016.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde_json::{json, Value};

use crate::doc::IncidentDoc;

/// Who sends the CAP messages (CAP `sender`).
pub const CAP_SENDER: &str = "shotfix@localhost";

/// A CAP 1.2 `<alert>` for one incident version. `kind` is `alert`, `update` or
/// `cancel`; `sent_utc` is when this message was produced. Updates and cancels
/// reference the first alert (CAP `references`), sent at `first_sent_utc`.
pub fn cap(
    doc: &IncidentDoc,
    kind: &str,
    sent_utc: &str,
    first_sent_utc: Option<(i64, &str)>,
) -> String {
    let sent = cap_time(sent_utc);
    let msg_type = match kind {
        "update" => "Update",
        "cancel" => "Cancel",
        _ => "Alert",
    };
    let identifier = format!("shotfix-{}-v{}", doc.id, doc.version);
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let el = |w: &mut Writer<Vec<u8>>, name: &str, text: &str| {
        // Writing to a Vec cannot fail.
        let _ = w.write_event(Event::Start(BytesStart::new(name)));
        let _ = w.write_event(Event::Text(BytesText::new(text)));
        let _ = w.write_event(Event::End(BytesEnd::new(name)));
    };
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let mut alert = BytesStart::new("alert");
    alert.push_attribute(("xmlns", "urn:oasis:names:tc:emergency:cap:1.2"));
    let _ = w.write_event(Event::Start(alert));
    el(&mut w, "identifier", &identifier);
    el(&mut w, "sender", CAP_SENDER);
    el(&mut w, "sent", &sent);
    el(&mut w, "status", "Actual");
    el(&mut w, "msgType", msg_type);
    el(&mut w, "scope", "Restricted");
    el(
        &mut w,
        "restriction",
        "Law enforcement and emergency services",
    );
    if let Some((first_version, first_sent)) = first_sent_utc.filter(|(v, _)| *v != doc.version) {
        // CAP references: sender,identifier,sent of the first message.
        el(
            &mut w,
            "references",
            &format!(
                "{CAP_SENDER},shotfix-{}-v{first_version},{}",
                doc.id,
                cap_time(first_sent)
            ),
        );
    }
    el(&mut w, "incidents", &doc.id);
    let _ = w.write_event(Event::Start(BytesStart::new("info")));
    el(&mut w, "language", "en-US");
    el(&mut w, "category", "Security");
    let event = match doc.class.as_str() {
        "gunfire" => "Gunfire",
        "probable_gunfire" => "Probable gunfire",
        "fireworks" => "Fireworks",
        _ => "Impulsive sound, possible gunfire",
    };
    el(&mut w, "event", event);
    el(&mut w, "responseType", "Assess");
    el(&mut w, "urgency", "Immediate");
    el(
        &mut w,
        "severity",
        if doc.class == "gunfire" {
            "Severe"
        } else {
            "Moderate"
        },
    );
    el(
        &mut w,
        "certainty",
        if doc.class == "gunfire" {
            "Observed"
        } else {
            "Possible"
        },
    );
    el(&mut w, "senderName", "shotfix acoustic gunshot detection");
    el(
        &mut w,
        "headline",
        &format!(
            "{event}: {} round(s), {} shooter(s)",
            doc.rounds, doc.shooters
        ),
    );
    let mut description =
        format!(
        "{} round(s) from {} to {}; {} shooter(s){}; located by {} sensor(s); 95 % radius {:.0} m.",
        doc.rounds,
        doc.first_utc,
        doc.last_utc,
        doc.shooters,
        if doc.automatic { "; automatic fire" } else { "" },
        doc.shots.first().map_or(0, |s| s.sensors.len()),
        doc.err95_m
    );
    if let Some(a) = &doc.address {
        description.push_str(&format!(" Nearest address: {a}."));
    }
    el(&mut w, "description", &description);
    for (name, value) in [
        ("class", doc.class.clone()),
        ("confidence", format!("{:.3}", doc.confidence)),
        ("rounds", doc.rounds.to_string()),
        ("shooters", doc.shooters.to_string()),
        ("automatic", doc.automatic.to_string()),
        ("version", doc.version.to_string()),
        ("software", doc.software.clone()),
    ] {
        let _ = w.write_event(Event::Start(BytesStart::new("parameter")));
        el(&mut w, "valueName", name);
        el(&mut w, "value", &value);
        let _ = w.write_event(Event::End(BytesEnd::new("parameter")));
    }
    let _ = w.write_event(Event::Start(BytesStart::new("area")));
    el(
        &mut w,
        "areaDesc",
        doc.address
            .as_deref()
            .unwrap_or("Located shot position (WGS84)"),
    );
    // CAP circle: "lat,lon radius_km" in WGS84.
    let radius_km = (doc.err95_m / 1000.0).max(0.001);
    el(
        &mut w,
        "circle",
        &format!("{:.6},{:.6} {:.3}", doc.lat, doc.lon, radius_km),
    );
    let _ = w.write_event(Event::End(BytesEnd::new("area")));
    let _ = w.write_event(Event::End(BytesEnd::new("info")));
    let _ = w.write_event(Event::End(BytesEnd::new("alert")));
    String::from_utf8_lossy(&w.into_inner()).into_owned()
}

/// CAP times are `YYYY-MM-DDThh:mm:ss-00:00`-style: whole seconds with an
/// explicit offset ("Z" is not allowed).
fn cap_time(rfc3339: &str) -> String {
    let base = rfc3339.get(..19).unwrap_or("1970-01-01T00:00:00");
    format!("{base}+00:00")
}

/// One incident as a GeoJSON Feature: a Point at the first shot, with the
/// incident's fields as properties (shots as a nested list).
pub fn geojson_feature(doc: &IncidentDoc) -> Value {
    let mut properties = serde_json::to_value(doc).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut properties {
        map.remove("lat");
        map.remove("lon");
    }
    json!({
        "type": "Feature",
        "id": doc.id,
        "geometry": {"type": "Point", "coordinates": [doc.lon, doc.lat]},
        "properties": properties,
    })
}

/// Incidents as a GeoJSON FeatureCollection.
pub fn geojson_collection(docs: &[IncidentDoc]) -> Value {
    json!({
        "type": "FeatureCollection",
        "features": docs.iter().map(geojson_feature).collect::<Vec<_>>(),
    })
}
