//! Which network (autonomous system) an address belongs to, from the ip-location-db `asn` data
//! (CSV ranges, CC BY 4.0). The CSV is read once into sorted range tables with interned
//! organisation names, so a lookup is one binary search.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;

/// The autonomous system an address is announced by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub asn: u32,
    /// The organisation that holds the AS.
    pub name: String,
}

/// One address range: `[start, end]` announced by `asn`, held by `names[name]`.
struct Range<T> {
    start: T,
    end: T,
    asn: u32,
    name: u32,
}

/// The ranges of one address family, sorted by start and not overlapping.
struct Table<T> {
    ranges: Vec<Range<T>>,
}

impl<T: Ord + Copy> Table<T> {
    fn find(&self, ip: T) -> Option<&Range<T>> {
        let i = self.ranges.partition_point(|r| r.start <= ip);
        let r = self.ranges.get(i.checked_sub(1)?)?;
        (ip <= r.end).then_some(r)
    }
}

/// IPv4 and IPv6 ranges with their organisation names.
pub struct AsnTable {
    v4: Table<u32>,
    v6: Table<u128>,
    names: Vec<String>,
}

/// Reads `start,end,asn,organisation` rows (addresses as decimal integers).
fn read_ranges<T: std::str::FromStr + Ord + Copy>(
    input: impl Read,
    names: &mut Vec<String>,
    index: &mut HashMap<String, u32>,
) -> Result<Table<T>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut ranges = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|e| e.to_string())? {
        let field = |i: usize| record.get(i).unwrap_or("");
        let (Ok(start), Ok(end), Ok(asn)) = (
            field(0).parse::<T>(),
            field(1).parse::<T>(),
            field(2).parse::<u32>(),
        ) else {
            return Err(format!(
                "line {}: not a range row",
                reader.position().line()
            ));
        };
        let org = field(3);
        let name = match index.get(org) {
            Some(&i) => i,
            None => {
                let i = names.len() as u32;
                names.push(org.to_string());
                index.insert(org.to_string(), i);
                i
            }
        };
        ranges.push(Range {
            start,
            end,
            asn,
            name,
        });
    }
    ranges.sort_by_key(|r| r.start);
    Ok(Table { ranges })
}

impl AsnTable {
    /// Reads the IPv4 and IPv6 CSV files (`asn-ipv4-num.csv`, `asn-ipv6-num.csv`).
    pub fn from_readers(v4: impl Read, v6: impl Read) -> Result<Self, String> {
        let (mut names, mut index) = (Vec::new(), HashMap::new());
        let v4 = read_ranges(v4, &mut names, &mut index)?;
        let v6 = read_ranges(v6, &mut names, &mut index)?;
        Ok(Self { v4, v6, names })
    }

    pub fn open(v4: &std::path::Path, v6: &std::path::Path) -> Result<Self, String> {
        let open = |p: &std::path::Path| {
            std::fs::File::open(p)
                .map(std::io::BufReader::new)
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        Self::from_readers(open(v4)?, open(v6)?)
    }

    /// The network announcing `ip`, if the data knows one.
    pub fn lookup(&self, ip: IpAddr) -> Option<Network> {
        let (asn, name) = match ip.to_canonical() {
            IpAddr::V4(v4) => self.v4.find(u32::from(v4)).map(|r| (r.asn, r.name))?,
            IpAddr::V6(v6) => self.v6.find(u128::from(v6)).map(|r| (r.asn, r.name))?,
        };
        // ASN 0 marks ranges that are not announced.
        (asn != 0).then(|| Network {
            asn,
            name: self.names[name as usize].clone(),
        })
    }

    /// Number of ranges held (both families).
    pub fn len(&self) -> usize {
        self.v4.ranges.len() + self.v6.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> AsnTable {
        let v4 = "16777216,16777471,13335,\"Cloudflare, Inc.\"\n\
                  16778240,16779263,38803,Gtelecom Pty Ltd\n";
        let v6 = "42540488161975842760550356425300246528,42540488241204005274814694018844196863,6939,Hurricane Electric LLC\n";
        AsnTable::from_readers(v4.as_bytes(), v6.as_bytes()).unwrap()
    }

    #[test]
    fn finds_the_range_holding_an_address() {
        let t = table();
        let cf = t.lookup("1.0.0.1".parse().unwrap()).unwrap();
        assert_eq!((cf.asn, cf.name.as_str()), (13335, "Cloudflare, Inc."));
        assert_eq!(t.lookup("1.0.0.255".parse().unwrap()).unwrap().asn, 13335);
        assert_eq!(t.lookup("1.0.4.0".parse().unwrap()).unwrap().asn, 38803);
        assert_eq!(t.lookup("2001::1".parse().unwrap()).unwrap().asn, 6939);
        // A mapped IPv4 address is looked up as IPv4.
        assert_eq!(
            t.lookup("::ffff:1.0.0.1".parse().unwrap()).unwrap().asn,
            13335
        );
    }

    #[test]
    fn gaps_and_edges_have_no_network() {
        let t = table();
        for ip in [
            "0.255.255.255",
            "1.0.1.0",
            "1.0.8.0",
            "255.255.255.255",
            "::1",
        ] {
            assert_eq!(t.lookup(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn a_malformed_row_is_refused() {
        assert!(AsnTable::from_readers("1,x,3,y\n".as_bytes(), "".as_bytes()).is_err());
    }
}
