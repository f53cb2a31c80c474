//! Deterministic demo data for `rapport demo`.
//!
//! Builds a fictional company, "Brightwave" (home fiber, mobile plans and
//! smart-home devices sold through an online shop), from a seed: customer
//! profiles, ~52 Segment-spec events per customer over the 90 days before
//! `now` (anonymous web visits stitched to an `identify`, web and app usage,
//! email engagement, orders, calls, chats and surveys), plus several hundred
//! support conversations whose text is composed from fragments per topic and
//! tone. [`live_activity`] produces a small, equally deterministic trickle of
//! new activity for a running demo.

use chrono::{DateTime, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

/// Segment-spec events and support conversations for the demo company.
#[derive(Debug, Clone)]
pub struct DemoCompany {
    /// Segment-spec event payloads (JSON objects), sorted by "timestamp" ascending.
    pub events: Vec<Value>,
    pub conversations: Vec<DemoConversation>,
}

/// One support conversation with a customer.
#[derive(Debug, Clone)]
pub struct DemoConversation {
    /// The customer's userId (same as used in events).
    pub user_id: String,
    /// One of "chat", "email", "voice", "sms", "social".
    pub channel: &'static str,
    pub subject: String,
    /// Ascending time, at least 2.
    pub messages: Vec<DemoMessage>,
}

/// One message of a conversation.
#[derive(Debug, Clone)]
pub struct DemoMessage {
    /// "inbound" | "outbound".
    pub direction: &'static str,
    /// "customer" | "agent" | "bot".
    pub author: &'static str,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// A small batch of live activity at one instant.
#[derive(Debug, Clone)]
pub struct LiveActivity {
    pub events: Vec<Value>,
    /// (user_id, channel, subject, message) for a new inbound customer message.
    pub message: Option<(String, &'static str, String, DemoMessage)>,
}

type Rand = ChaCha8Rng;
type Frags = &'static [&'static str];

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WINDOW: i64 = 90 * DAY;
/// Average events per customer: 2,000 customers give ~105,000 events.
const EVENTS_PER_CUSTOMER: usize = 52;
/// Anonymous pages + identify + a little activity, for even the lightest user.
const MIN_EVENTS: usize = 8;
/// ChaCha stream offsets, so profiles and live ticks never share a stream with `generate`.
const PROFILE_STREAM: u64 = 1 << 40;
const LIVE_STREAM: u64 = 2 << 40;
const APP_VERSION: &str = "5.14.2";
const SITE: &str = "https://www.brightwave.example";

// ---------------------------------------------------------------- data tables

#[rustfmt::skip]
const FIRST_NAMES: Frags = &[
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Lucas", "Isabella", "Ethan", "Mia", "James",
    "Amara", "Oliver", "Priya", "Aarav", "Chloe", "Daniel", "Zoe", "Samuel", "Hannah", "Kenji", "Yuki", "Grace",
    "Leo", "Fatima", "Omar", "Nora", "Elijah", "Layla", "Diego", "Sofia", "Caleb", "Aisha", "Ravi", "Megan",
    "Tomas", "Ingrid", "Callum", "Niamh", "Declan", "Freya", "Hamish", "Rosa", "Andre", "Chiara", "Marcus", "Tess",
    "Jamal", "Imani", "Wei", "Mei", "Jonah", "Elena", "Felix", "Ruby", "Arjun", "Lena", "Kofi", "Ama", "Patrick",
    "Sienna", "Hugo", "Maya",
];
#[rustfmt::skip]
const LAST_NAMES: Frags = &[
    "Smith", "Johnson", "Garcia", "Nguyen", "Patel", "Kim", "Okafor", "Mueller", "Rossi", "Silva", "Brown",
    "Taylor", "Wilson", "Martinez", "Chen", "Singh", "O'Connor", "MacLeod", "Hughes", "Evans", "Kowalski", "Novak",
    "Haddad", "Ahmed", "Lopez", "Walker", "Wright", "Clarke", "Murphy", "Kelly", "Fraser", "Campbell", "Tanaka",
    "Sato", "Ivanova", "Petrov", "Jensen", "Larsen", "Dubois", "Moreau", "Santos", "Costa", "Mendez", "Reyes",
    "Cohen", "Levi", "Adeyemi", "Mensah", "Bailey", "Foster", "Hayes", "Price", "Bennett", "Russell", "Brooks",
    "Sanders", "Park", "Lee", "Wong", "Das", "Iyer", "Byrne", "Doyle", "Fischer",
];
#[rustfmt::skip]
const AGENTS: Frags = &[
    "Maya", "Jordan", "Priscilla", "Tom", "Aiden", "Rachel", "Sam", "Harriet", "Kwame", "Lucia", "Ben", "Ines",
    "Connor", "Dev", "Alisha", "Marco", "Greta", "Tunde", "Hollie", "Raj",
];
const EMAIL_DOMAINS: Frags = &["example.com", "example.org", "example.net"];
#[rustfmt::skip]
const COMPANIES: Frags = &[
    "Northwind Studio", "Juniper & Oak Legal", "Bluefin Analytics", "Harbor Dental Group", "Maple Street Bakery",
    "Copperline Logistics", "Fernhill Architects", "Quarry Lane Vets",
];
#[rustfmt::skip]
const TITLES: Frags = &["Office Manager", "Founder", "IT Administrator", "Operations Lead", "Owner", "Practice Manager"];
const COMPETITORS: Frags = &[
    "Nimbus Broadband",
    "Clearline Fiber",
    "Orbitel",
    "Swiftlink",
    "Hearth Mobile",
];

/// (city, ISO country, UTC offset in hours, weight, UK drama-range landline prefix).
#[rustfmt::skip]
const CITIES: &[(&str, &str, i64, f64, &str)] = &[
    ("Austin", "US", -6, 5.0, ""), ("Denver", "US", -7, 5.0, ""), ("Portland", "US", -8, 5.0, ""),
    ("Columbus", "US", -5, 5.0, ""), ("Raleigh", "US", -5, 5.0, ""), ("Phoenix", "US", -7, 5.0, ""),
    ("Minneapolis", "US", -6, 5.0, ""), ("Sacramento", "US", -8, 5.0, ""), ("Pittsburgh", "US", -5, 5.0, ""),
    ("Tampa", "US", -5, 5.0, ""), ("Madison", "US", -6, 5.0, ""), ("Boise", "US", -7, 5.0, ""),
    ("Richmond", "US", -5, 5.0, ""), ("Kansas City", "US", -6, 5.0, ""), ("Albuquerque", "US", -7, 5.0, ""),
    ("Spokane", "US", -8, 5.0, ""), ("Toronto", "CA", -5, 3.0, ""), ("Calgary", "CA", -7, 3.0, ""),
    ("Halifax", "CA", -4, 3.0, ""), ("Ottawa", "CA", -5, 3.0, ""), ("Winnipeg", "CA", -6, 3.0, ""),
    ("Manchester", "GB", 0, 4.0, "+44 161 496 0"), ("Leeds", "GB", 0, 4.0, "+44 113 496 0"),
    ("Bristol", "GB", 0, 4.0, "+44 117 496 0"), ("Glasgow", "GB", 0, 4.0, "+44 141 496 0"),
    ("Cardiff", "GB", 0, 4.0, "+44 29 2018 0"), ("London", "GB", 0, 4.0, "+44 20 7946 0"),
];

/// North American area codes for fictional 555-01xx numbers.
const AREA_CODES: &[u16] = &[
    202, 206, 212, 213, 214, 303, 305, 312, 313, 314, 404, 407, 412, 415, 503, 512, 602, 612, 615,
    617, 619, 702, 704, 713, 720, 801, 813, 816, 916, 919, 210, 971, 952, 505, 509, 608, 614, 215,
    804, 216,
];

/// (plan id, display name, monthly price in cents, headline speed in Mbps, weight).
#[rustfmt::skip]
const PLANS: &[(&str, &str, u32, u32, f64)] = &[
    ("fiber-100", "Fiber 100", 4500, 100, 20.0), ("fiber-500", "Fiber 500", 6500, 500, 30.0),
    ("fiber-1000", "Fiber 1000", 8500, 1000, 15.0), ("mobile-basic", "Mobile Basic", 2000, 100, 12.0),
    ("mobile-unlimited", "Mobile Unlimited", 4500, 300, 13.0), ("bundle-plus", "Bundle Plus", 11000, 500, 10.0),
];

/// (product id, name, price in cents, category). The last one is never "set up" or "paired".
#[rustfmt::skip]
const PRODUCTS: &[(&str, &str, u32, &str)] = &[
    ("bw-rtr-6e", "Wi-Fi 6E Router", 12900, "networking"), ("bw-mesh-2", "Mesh Extender (2-pack)", 14900, "networking"),
    ("bw-hotspot", "5G Mobile Hotspot", 8900, "mobile"), ("bw-door", "Smart Video Doorbell", 9900, "smart-home"),
    ("bw-cam-in", "Smart Indoor Camera", 5900, "smart-home"),
    ("bw-cam-out", "Floodlight Camera", 17900, "smart-home"),
    ("bw-plug-2", "Smart Plug (2-pack)", 2900, "smart-home"), ("bw-thermo", "Smart Thermostat", 14900, "smart-home"),
    ("bw-lock", "Smart Door Lock", 19900, "smart-home"), ("bw-leak", "Leak Sensor Kit", 4900, "smart-home"),
    ("bw-tvbox", "Streaming TV Box", 6900, "entertainment"), ("bw-charge", "Fast Wireless Charger", 3900, "accessories"),
];

/// (page name, path, title, weight).
#[rustfmt::skip]
const PAGES: &[(&str, &str, &str, f64)] = &[
    ("Home", "/", "Brightwave | Internet, Mobile & Smart Home", 20.0), ("Pricing", "/pricing", "Plans & Pricing", 10.0),
    ("Coverage Map", "/coverage", "Check Coverage at Your Address", 6.0), ("Support", "/support", "Help & Support", 10.0),
    ("Checkout", "/checkout", "Checkout", 2.0), ("Fiber Plans", "/plans/fiber", "Fiber Broadband Plans", 6.0),
    ("Mobile Plans", "/plans/mobile", "Mobile Plans", 5.0), ("Shop", "/shop", "Shop Devices", 5.0),
    ("Smart Home", "/shop/smart-home", "Smart Home Devices", 4.0), ("Account", "/account", "My Account", 14.0),
    ("Bill", "/account/bill", "Your Bill Explained", 10.0), ("Outage Status", "/status", "Service Status", 4.0),
    ("Router Setup Guide", "/support/router-setup", "Setting Up Your Router", 3.0),
    ("Moving Home", "/support/moving", "Moving Home with Brightwave", 2.0),
    ("Refer a Friend", "/refer", "Refer a Friend", 1.0),
];
/// Indices into PAGES: pre-signup landing visits, and pages used by specific sessions.
const LANDING: &[usize] = &[0, 0, 1, 2, 5, 6, 8];
const PAGE_SUPPORT: usize = 3;
const PAGE_CHECKOUT: usize = 4;
const PAGE_SHOP: usize = 7;
const PAGE_SMART_HOME: usize = 8;

/// (screen name, weight).
#[rustfmt::skip]
const SCREENS: &[(&str, f64)] = &[
    ("Home", 20.0), ("Usage", 18.0), ("Bill", 14.0), ("Speed Test", 8.0), ("Devices", 8.0), ("Plan", 6.0),
    ("Support", 6.0), ("Wi-Fi Settings", 6.0), ("Rewards", 4.0), ("Notifications", 4.0), ("Smart Home", 6.0),
];

/// (campaign id, campaign name, subject line, landing page index).
#[rustfmt::skip]
const CAMPAIGNS: &[(&str, &str, &str, usize)] = &[
    ("cmp-bill-ready", "Bill ready", "Your latest Brightwave bill is ready", 10),
    ("cmp-fiber-upgrade", "Fiber 1000 upgrade", "Go faster for less this month", 5),
    ("cmp-smart-home-sale", "Smart home sale", "Up to 30% off smart home kits", 8),
    ("cmp-network-works", "Network upgrade", "We're upgrading the network near you", 11),
    ("cmp-wifi-tips", "Wi-Fi tips", "Five easy ways to better Wi-Fi at home", 12),
    ("cmp-referral", "Refer a friend", "Give a month free, get a month free", 14),
    ("cmp-unlimited", "Mobile Unlimited offer", "Unlimited data, now with EU roaming", 6),
];

/// Relative activity by local hour of day.
#[rustfmt::skip]
const HOUR_WEIGHTS: [f64; 24] = [
    1.0, 0.6, 0.4, 0.3, 0.3, 0.8, 2.5, 5.0, 7.5, 8.5, 9.0, 9.0, 10.0, 9.5, 9.0, 9.0, 9.0, 10.0, 11.0, 12.0, 12.0,
    10.0, 6.0, 2.5,
];

const CHANNELS: &[&str] = &["chat", "email", "voice", "sms", "social"];
const CHANNEL_WEIGHTS: &[f64] = &[35.0, 25.0, 20.0, 10.0, 10.0];
const QUEUES: &[&str] = &[
    "billing",
    "orders",
    "technical-support",
    "retention",
    "account-services",
];
#[rustfmt::skip]
const FEE_NAMES: Frags = &[
    "late payment fee", "router rental fee", "setup charge", "paper billing fee", "roaming charge",
    "priority support fee",
];
const REFUND_WINDOWS: Frags = &[
    "3-5 business days",
    "2-3 business days",
    "up to 5 working days",
];

// ------------------------------------------------------------ conversation text

struct Tone {
    weight: f64,
    openers: Frags,
    asks: Frags,
    reactions: Frags,
    empathy: Frags,
}

const DELIGHTED: usize = 0;
const ANGRY: usize = 2;
const ANXIOUS: usize = 3;
const NEUTRAL: usize = 4;

#[rustfmt::skip]
static TONES: [Tone; 5] = [
    Tone { // delighted
        weight: 12.0,
        openers: &[
            "First of all, I've been really happy with Brightwave since I joined.", "Loving the {plan} plan so far!",
            "Quick one, and honestly the service has been brilliant otherwise.",
            "You've always been great, so I'm sure this is an easy fix!",
        ],
        asks: &["No rush at all, thanks so much!", "Thanks in advance, you're always helpful.", "Appreciate it, have a lovely day!"],
        reactions: &[
            "Amazing, thank you {agent}! That was so quick.", "Perfect, that's exactly what I needed. Thanks {agent}!",
            "Brilliant - really appreciate the help.", "You're a star, {agent}. Thank you!",
        ],
        empathy: &[
            "Thanks so much for the kind words, {first}, that really made my day!",
            "That's lovely to hear, {first} - let's get this sorted for you.",
            "Happy to help, {first}, and thanks for being with us.",
        ],
    },
    Tone { // confused
        weight: 20.0,
        openers: &[
            "I'm a bit confused and hoping someone can explain.", "Sorry if this is a silly question but I can't figure this out.",
            "I've read the help pages and I'm still not sure what's going on.", "Not sure if I'm reading this right.",
        ],
        asks: &["Can someone explain what I'm supposed to do?", "Could you walk me through it?", "Is this normal or have I done something wrong?"],
        reactions: &[
            "Ok, I think I get it now - so I don't need to do anything else?", "Right, that makes more sense. Thanks {agent}.",
            "Thanks, so just to double-check, it sorts itself out from here?",
        ],
        empathy: &[
            "Not a silly question at all, {first} - it is confusing, so let me clarify.",
            "Good question, {first}. I'll explain exactly what's happening.", "I can see why that's unclear, {first}, sorry about that.",
        ],
    },
    Tone { // angry
        weight: 20.0,
        openers: &[
            "I'm honestly furious about this.", "This is completely unacceptable.", "I am really fed up with Brightwave right now.",
            "Frankly I expected a lot better than this.",
        ],
        asks: &["Sort it out today please.", "I want this fixed now, not next week.", "I expect a proper answer this time."],
        reactions: &[
            "Fine. I'll wait, but if this happens again I'm leaving.", "Ok. I'll hold you to that, {agent}.",
            "That's the least you could do. I'll check back tomorrow.",
        ],
        empathy: &[
            "I'm really sorry, {first} - that's not the experience you should be getting from us.",
            "You have every right to be frustrated, {first}, and I apologise.",
            "I completely understand your frustration, {first}. Let me take ownership of this.",
        ],
    },
    Tone { // anxious
        weight: 15.0,
        openers: &[
            "I'm really worried about this and not sure what to do.", "Sorry to bother you but this is stressing me out.",
            "I'm panicking a bit here, to be honest.", "I'm quite anxious about this so I'd appreciate a quick reply.",
        ],
        asks: &["Please can someone let me know as soon as possible?", "Can you tell me it's going to be ok?", "I really need to know what happens next."],
        reactions: &[
            "Thank you so much, that's a huge weight off my mind.", "Ok, that helps a lot. Thanks for being so patient, {agent}.",
            "Phew. Thank you - I was really worried.",
        ],
        empathy: &[
            "I can hear how worrying this is, {first}, and I'm going to help you right now.",
            "Please don't worry, {first} - I'll make sure this gets sorted.",
            "I completely understand why that's stressful, {first}. Here's what I'm doing.",
        ],
    },
    Tone { // neutral
        weight: 33.0,
        openers: &["Quick question about my account.", "Hoping you can help with something.", "I need some help please."],
        asks: &["Thanks.", "Could you look into it?", "Let me know, thanks.", "What are the next steps?"],
        reactions: &["Great, thanks for your help.", "Ok, thanks {agent}.", "Got it, appreciate it.", "Sounds good."],
        empathy: &["Thanks for getting in touch, {first}.", "Thanks for reaching out, {first} - happy to help.", "Thanks for the details, {first}."],
    },
];

struct Topic {
    key: &'static str,
    /// 0 billing, 1 delivery, 2 outage, 3 cancellation, 4 account / how-to.
    family: usize,
    weight: f64,
    subjects: Frags,
    problems: Frags,
    details: Frags,
    bot_q: Frags,
    answers: Frags,
    actions: Frags,
    followups: Frags,
}

#[rustfmt::skip]
static TOPICS: [Topic; 12] = [
    Topic {
        key: "billing-double-charge", family: 0, weight: 9.0,
        subjects: &["Charged twice for my {month} bill", "Duplicate payment of {amount}", "Double charge on card ending {last4}"],
        problems: &[
            "I've been charged {amount} twice for my {month} bill.",
            "My bank statement shows two payments of {amount} to Brightwave on {date}.",
            "The {month} payment went out twice from the card ending {last4}.",
            "Looks like my autopay ran twice this month - {amount} both times.",
        ],
        details: &[
            "My account only shows one bill, so one of them must be a mistake.", "I've got a screenshot of the statement if you need it.",
            "Nothing on my plan changed, so I don't understand why.", "It's a joint account so my partner spotted it first.",
        ],
        bot_q: &["Can you confirm the last four digits of the card that was charged?", "Which card or bank account was the payment taken from?"],
        answers: &["It's the card ending {last4}.", "Card ending {last4}, both payments on {date}.", "{last4} - same card as always."],
        actions: &[
            "I can see the duplicate payment of {amount} from {date}. I've reversed it and the money will be back on the card ending {last4} within {refund_window}.",
            "You're right: our payment system retried your {month} autopay after a timeout and took it twice. I've refunded {amount} today under reference {ticket}.",
            "I've confirmed the second {amount} charge was our error and issued a full refund, plus a {credit} credit for the hassle.",
        ],
        followups: &["Will I get an email when the refund goes through?", "Will this mess up next month's autopay?"],
    },
    Topic {
        key: "billing-unexpected-fee", family: 0, weight: 7.0,
        subjects: &["What is the {fee} {fee_name} on my bill?", "Unexpected {fee_name}", "Bill higher than usual in {month}"],
        problems: &[
            "My bill this month has a {fee_name} of {fee} that nobody told me about.",
            "There's a {fee} charge labelled '{fee_name}' and I have no idea what it's for.",
            "My {month} bill came to {amount} instead of the usual - looks like a {fee_name} was added.",
            "I was never told about a {fee_name}, but there's {fee} of it on my latest bill.",
        ],
        details: &[
            "I've paid on time every single month.", "When I signed up I was told there were no extra fees.",
            "I haven't changed anything on my {plan} plan.", "I checked my contract and can't see this mentioned anywhere.",
        ],
        bot_q: &["I can help explain charges. Which bill are you asking about?", "Is this about your most recent bill or an older one?"],
        answers: &["The latest one, the {month} bill.", "The {month} bill - the {fee_name}.", "The most recent one, {amount} total."],
        actions: &[
            "I've looked at your {month} bill: the {fee_name} of {fee} was applied because your promotional discount lapsed a day early. I've removed it and reissued the bill.",
            "That {fee} {fee_name} shouldn't be there - I've credited it back, so your next bill will be {fee} lower.",
            "The {fee_name} was triggered when the equipment swap on {date} was logged incorrectly. It's waived and I've noted the account so it won't come back.",
        ],
        followups: &["Will the corrected bill be emailed to me?", "Can you make sure this doesn't happen again next month?"],
    },
    Topic {
        key: "billing-refund", family: 0, weight: 6.0,
        subjects: &["Refund for returned {device}", "Still waiting for my refund", "Refund of {amount} not received"],
        problems: &[
            "I returned the {device} from order {order} on {date} and haven't seen the refund yet.",
            "I was promised a refund of {amount} after my return, but it still hasn't arrived.",
            "It's been {days} days since you confirmed my refund of {amount} and nothing has reached my account.",
            "I sent the {device} back within the 30-day window and still no refund.",
        ],
        details: &[
            "The tracking shows you received the parcel.", "I kept the drop-off receipt.",
            "The return confirmation email said 5 business days.", "I used the prepaid returns bag that came in the box.",
        ],
        bot_q: &["Do you have the order number for the return?", "Which order is the refund for?"],
        answers: &["Order {order}.", "It's {order}, the {device}.", "The order number is {order}."],
        actions: &[
            "Our warehouse logged the {device} from {order} on {date}, but the refund got stuck waiting for a quality check. I've released it - {amount} will reach you within {refund_window}.",
            "I can see the return arrived. I've pushed the {amount} refund through manually under reference {ticket}.",
            "The refund for {order} bounced because the original card had expired. I've reissued {amount} to your current payment method.",
        ],
        followups: &["Can you email me a confirmation with the reference?", "Will it show under the Brightwave name on my statement?"],
    },
    Topic {
        key: "delivery-not-arrived", family: 1, weight: 8.0,
        subjects: &["Where is my {device}?", "Order {order} hasn't arrived", "Delivery missing - {order}"],
        problems: &[
            "My {device} (order {order}) was supposed to arrive on {date} and it still hasn't shown up.",
            "I ordered a {device} {days} days ago and the tracking hasn't moved since {date}.",
            "The tracking for {order} says delivered, but there's nothing here.", "I'm still waiting on the {device} from order {order}.",
        ],
        details: &[
            "I was home all day and nobody knocked.", "I've checked with the neighbours and the building's parcel room.",
            "The courier's tracking page just says 'in transit'.", "Without it I can't finish setting up my service.",
        ],
        bot_q: &["I can check on that. What's your order number?", "Can you share the order number so I can look up the shipment?"],
        answers: &["It's {order}.", "Order number {order}, the {device}.", "{order} - placed on {date}."],
        actions: &[
            "The courier has confirmed your {device} was misrouted at their depot. I've sent a replacement by express delivery and it'll be with you by {eta}.",
            "Order {order} was marked delivered to the wrong address. I've opened a trace with the courier and dispatched a new {device} today, arriving {eta}.",
            "I've chased the courier: the parcel is at your local depot and will be delivered on {eta}. If it doesn't turn up, we'll send a replacement, no questions asked.",
        ],
        followups: &["Will I get a new tracking number?", "Do I need to be home to sign for it?"],
    },
    Topic {
        key: "delivery-wrong-item", family: 1, weight: 5.0,
        subjects: &["Wrong item in order {order}", "Received a {wrong} instead of a {device}", "Order mix-up on {order}"],
        problems: &[
            "I ordered a {device} but the box had a {wrong} in it.", "Order {order} arrived today, but it's a {wrong}, not the {device} I paid for.",
            "You've sent me a {wrong}. I ordered a {device} on {date}.", "The packing slip says {device} but the item inside is a {wrong}.",
        ],
        details: &[
            "I haven't opened the inner packaging.", "I need the {device} before the install appointment.",
            "The order confirmation clearly says {device}.", "I've taken photos of everything.",
        ],
        bot_q: &["Sorry about that! What's the order number?", "Let's fix this. Which order was it?"],
        answers: &["{order}. I got a {wrong}.", "Order {order}, should be a {device}.", "It's {order}."],
        actions: &[
            "Sorry about the mix-up - I've shipped the correct {device} by express, arriving {eta}, and emailed you a prepaid label for the {wrong}.",
            "I've arranged a courier to swap the {wrong} for your {device} on {eta}; just hand the box to the driver.",
            "The correct {device} is on its way and arrives {eta}. Please keep the {wrong} until the return label reaches you - there's no charge either way.",
        ],
        followups: &["Do I need to repack the {wrong} in the original box?", "Will the courier bring the {device} at the same time?"],
    },
    Topic {
        key: "outage-internet-down", family: 2, weight: 12.0,
        subjects: &["Internet down in {city}", "No connection since {date}", "Service outage - still no internet"],
        problems: &[
            "My internet has been completely down since {date}.", "The router light has been flashing red for {days} days and nothing connects.",
            "We've had no connection at all since yesterday evening here in {city}.",
            "The internet kept dropping every few minutes and now it's gone completely.",
        ],
        details: &[
            "I've restarted the router three times and checked every cable.", "The status page says there's no outage in my area.",
            "I work from home so this is a big problem.", "The neighbours on Brightwave seem to be fine.",
        ],
        bot_q: &["I'm running a line check now. Have you tried restarting your router?", "Is the light on your router red, orange or off?"],
        answers: &["Yes, restarted it twice. Still red.", "It flashes orange, then goes red.", "Red. Has been since {date}."],
        actions: &[
            "There's a fault on the fibre cabinet serving your street in {city}. Engineers are on site and expect to restore service by {eta}; I've added a {credit} credit for the downtime.",
            "The line test shows a signal loss at your property, so I've booked an engineer for {eta} between 8am and 12pm, free of charge.",
            "I've reset your line remotely and pushed a firmware update to the router - give it ten minutes to reboot. If it's still red I'll book an engineer straight away.",
        ],
        followups: &["Will the engineer need to come inside?", "Can you text me when it's fixed?"],
    },
    Topic {
        key: "outage-slow-speed", family: 2, weight: 10.0,
        subjects: &["Speeds way below {plan_speed} Mbps", "Slow internet in the evenings", "Paying for {plan}, getting {speed} Mbps"],
        problems: &[
            "I'm on {plan} but speed tests only show about {speed} Mbps.", "Every evening the internet slows to a crawl - around {speed} Mbps.",
            "I'm paying for {plan_speed} Mbps and getting {speed} Mbps at best.", "Video calls keep freezing and the app's speed test says {speed} Mbps.",
        ],
        details: &[
            "I've tested with a cable plugged straight into the router.", "It's been like this since about {date}.",
            "It's fine in the morning but useless after 6pm.", "I've already moved the router away from the TV.",
        ],
        bot_q: &["Let's run a quick diagnostic. Are you testing over Wi-Fi or a cable?", "Which device did you use for the speed test?"],
        answers: &["On a cable, {speed} Mbps.", "Wi-Fi, laptop in the same room as the router. {speed} Mbps.", "Both - the cable gets maybe {speed}."],
        actions: &[
            "Diagnostics show your router is on old firmware that caps speeds. I've pushed the update and your line should be back to {plan_speed} Mbps within the hour.",
            "There's evening congestion on a node in {city}; an upgrade is scheduled for {eta}. I've applied a {credit} credit to cover the slow period.",
            "Your line is syncing at full speed, so it's most likely the Wi-Fi. I'm sending a free Mesh Extender to arrive {eta}, which should fix the weak spots.",
        ],
        followups: &["How will I know the update worked?", "Should I run another speed test tonight?"],
    },
    Topic {
        key: "cancellation", family: 3, weight: 10.0,
        subjects: &["I want to cancel", "Cancel my {plan} plan", "Thinking about leaving Brightwave"],
        problems: &[
            "I'd like to cancel my {plan} plan.", "{competitor} has offered me a better deal, so I'm planning to switch.",
            "Please tell me how to cancel - {competitor} is offering the same speed for less.",
            "I want to end my contract at the end of this billing month.",
        ],
        details: &[
            "I've been a customer for a few years.", "{competitor} quoted me about {fee} a month less.",
            "Honestly the service has been fine, it's just the price.", "I don't want to pay an early termination fee.",
        ],
        bot_q: &["I can help with that. Is the reason price, service, or something else?", "Sorry to hear you're thinking of leaving. What's prompting the change?"],
        answers: &["Price, mostly. {competitor} is cheaper.", "Mostly price, and a couple of outages lately.", "{competitor} offered me {fee} a month off."],
        actions: &[
            "Before you go, I can offer {plan} at {fee} less per month for the next 12 months, with no new contract.",
            "I've matched the {competitor} offer: your bill drops by {fee} a month and I've added a {credit} loyalty credit. If you'd still like to cancel, just reply and I'll process it.",
            "You're past your minimum term, so there's no exit fee. If you'd like to stay I can also do three months at half price - just say the word, otherwise I'll book the cancellation for your bill date.",
        ],
        followups: &["Can I get that in writing, please?", "What happens to the router if I do cancel?"],
    },
    Topic {
        key: "howto-esim", family: 4, weight: 7.0,
        subjects: &["How do I move my eSIM to a new phone?", "eSIM QR code not working", "Help activating eSIM"],
        problems: &[
            "I've got a new phone and can't work out how to move my eSIM across.", "The QR code for my eSIM doesn't seem to work.",
            "My new phone says 'eSIM cannot be added' when I scan the code you emailed on {date}.",
        ],
        details: &["My old phone has already been reset.", "I'm not very technical so simple steps would help.", "I'm abroad from {deadline} so I need it working."],
        bot_q: &["Happy to help with eSIM setup. Is your new phone an iPhone or Android?", "Are you setting this up in the Brightwave app or on the website?"],
        answers: &["iPhone, brand new.", "Android - a Pixel.", "In the app, but it keeps timing out."],
        actions: &[
            "I've generated a fresh eSIM QR code and sent it to your email. Open Settings, add a mobile plan and scan it - it takes about two minutes.",
            "Each eSIM code only works once, and the first one was used on {date}. I've reset it and emailed a new code - scan it on Wi-Fi and it'll activate straight away.",
        ],
        followups: &["Do I need to restart my phone afterwards?", "Will the old eSIM stop working automatically?"],
    },
    Topic {
        key: "howto-device-setup", family: 4, weight: 8.0,
        subjects: &["Help setting up the {device}", "Can't pair my {device}", "{device} won't connect"],
        problems: &[
            "I'm trying to set up the {device} and the app can't find it.", "How do I connect the {device} to my Brightwave account?",
            "The {device} keeps dropping off the Wi-Fi after a few minutes.",
        ],
        details: &["I followed the guide in the app up to step 3.", "The app just keeps spinning.", "The light on it is blinking orange."],
        bot_q: &["Happy to help with setup. Which device are you using?", "Is the device plugged in and showing a light?"],
        answers: &["The {device}, bought on {date}.", "Yes, the light is blinking.", "The {device} - it's plugged in."],
        actions: &[
            "Hold the button on the back of the {device} for 10 seconds until the light pulses blue, then choose 'Add device' in the app. It should pair straight away.",
            "Your account had hit its device limit, which is why pairing failed. I've raised it, so try adding the {device} again now.",
            "The {device} needs the 2.4 GHz band. I've switched on 'compatibility mode' for your router remotely, so it should stay connected now.",
        ],
        followups: &["Will the settings survive a router restart?", "Can I add a second one the same way?"],
    },
    Topic {
        key: "account-login", family: 4, weight: 6.0,
        subjects: &["Can't log in to my account", "Locked out of the app", "Password reset not arriving"],
        problems: &[
            "I'm locked out of my account after too many password attempts.", "The app keeps saying my password is wrong, even after resetting it.",
            "I can't log in since {date} and need to see my bill.",
        ],
        details: &["The reset email never arrives.", "I'm the account holder.", "I've tried on my laptop and my phone."],
        bot_q: &["I can help with that. For security, which city is the service address in?", "Can you confirm the email address on the account?"],
        answers: &["It's the email I'm writing from.", "The address is in {city}.", "{city}, same as always."],
        actions: &[
            "I've unlocked your account and sent a new reset link - it's valid for 30 minutes, and do check the spam folder just in case.",
            "Your login email had an old address on it, which is why resets never arrived. I've updated it and sent a fresh reset link.",
        ],
        followups: &["Is there a way to stay logged in on the app?", "Will I get an email confirming the change?"],
    },
    Topic {
        key: "account-payment-method", family: 4, weight: 7.0,
        subjects: &["Changing how I pay", "Update to my payment method", "Payment details need updating"],
        problems: &[
            "I need to change the card my bill is paid from - the one ending {last4} is expiring.",
            "How do I switch from card payments to direct debit?",
            "My payment was declined on {date} because I changed banks. How do I update it?",
        ],
        details: &["I don't want to miss a payment.", "I'm the account holder.", "I tried in the app but it gave me an error."],
        bot_q: &["I can help with payment details. Can you confirm the city on the account?", "Can you confirm the email address on the account?"],
        answers: &["The address is in {city}.", "It's the email I'm writing from.", "{city}."],
        actions: &[
            "You can change it under Account > Billing > Payment method. I've also added a 7-day grace period so nothing fails in the meantime.",
            "I've sent you a secure link to set up the new payment method; it takes a minute and your next bill on {eta} will use it.",
            "I've paused payment collection and waived any late fee - once you add the new details through the secure link I've emailed, you're all set.",
        ],
        followups: &["Is there a way to do this in the app next time?", "Will I get an email confirming the change?"],
    },
];

#[rustfmt::skip]
mod frag {
    use super::Frags;
    pub const GREETINGS: Frags = &["Hi!", "Hello.", "Hi there.", "Good morning.", "Hey."];
    pub const EMAIL_GREETINGS: Frags = &["Hi Brightwave team,", "Hello,", "Dear Brightwave,", "Hi support,"];
    pub const EMAIL_SIGNOFFS: Frags = &["Thanks,", "Thank you,", "Regards,", "Best,", "Cheers,"];
    pub const AGENT_SIGNOFFS: Frags = &["Kind regards,", "Best wishes,", "Thanks again,", "Warm regards,"];
    pub const SOCIAL_HANDLES: Frags = &["@Brightwave", "@BrightwaveHelp"];
    pub const VOICE_OPENERS: Frags = &[
        "Yeah, hi, thanks for picking up.", "Hi, um, okay, so.", "Hello? Right, hi.", "Oh hi, yes, okay.",
        "Hi there, I've been on hold a while so I'll get straight to it.",
    ];
    pub const VOICE_FILLERS: Frags = &["Okay.", "Right.", "Yeah, so.", "Hmm, okay.", "Mm-hm."];
    pub const VOICE_AGENT_INTROS: Frags = &[
        "Thanks for calling Brightwave, you're speaking with {agent}.", "Hi, this is {agent} at Brightwave, thanks for holding.",
        "Good to speak with you, my name's {agent}.",
    ];
    pub const VOICE_AGENT_LOOKUPS: Frags = &[
        "Okay, let me just pull up your account... right, I can see it.", "Bear with me one second... okay.",
        "Alright, I've got your details here.", "Let me have a look... yep.",
    ];
    pub const VOICE_AGENT_FILLERS: Frags = &["Okay.", "Sure.", "Right, understood.", "Got it."];
    pub const BOT_GREETINGS: Frags = &[
        "Hi {first}! I'm Brighty, Brightwave's virtual assistant.", "Hello {first}, thanks for contacting Brightwave. I'm the virtual assistant.",
        "Hi there! You're chatting with Brighty, the Brightwave assistant.",
    ];
    pub const AGENT_INTROS: Frags = &["Hi {first}, this is {agent} from Brightwave.", "Hey {first}, {agent} here.", "Hello {first}, {agent} from the support team."];
    pub const AGENT_HANDOFFS: Frags = &[
        "Hi {first}, {agent} here from the Brightwave team - I've picked up your chat.", "Thanks for waiting, {first}. This is {agent}, I'll take it from here.",
    ];
    pub const AGENT_CLOSINGS: Frags = &[
        "Is there anything else I can help with today?", "Your reference is {ticket} if you need it.",
        "I'll keep {ticket} open until you confirm it's all working.", "Thanks for your patience, {first}.",
    ];
    pub const AGENT_FINALS: Frags = &[
        "You're welcome, {first}! Have a great rest of your day.", "My pleasure - and yes, you'll get an email confirmation shortly.",
        "No problem at all. I've added notes under {ticket} so anyone on the team can pick this up.", "Glad I could help. Take care, {first}.",
        "Exactly right - nothing else needed on your side. Reach out any time.",
    ];
    pub const ESC_HOLD: Frags = &[
        "Thanks for the details, {first}. I've passed this to the relevant team and they'll be in touch.",
        "Sorry for the trouble. I've raised ticket {ticket} and someone will update you within 48 hours.",
        "Thanks for your patience - I've added a note to your account and asked a specialist to review it.",
        "I understand. I've chased the team again and marked ticket {ticket} as a priority.",
    ];
    pub const ESC_ANNOYED: Frags = &[
        "This is the second time I've had to contact you about this.", "I was told someone would get back to me and nobody has.",
        "Your last reply didn't actually fix anything.", "I've now spent over an hour on this across two conversations.",
    ];
    pub const ESC_ANNOYED_ASK: Frags = &[
        "Can someone actually look at it this time?", "I need a real answer, not another ticket number.", "Please don't just copy and paste again.",
    ];
    pub const ESC_FURIOUS: Frags = &[
        "This is the THIRD time I'm contacting you about exactly the same problem.", "I've been passed around for {days} days and I'm done being polite.",
        "Every time I get in touch I get a scripted reply and nothing changes.", "Three contacts, two tickets, zero fixes. Ridiculous.",
    ];
    pub const ESC_THREAT: Frags = &[
        "If this isn't fixed today I'm cancelling and going to {competitor}.",
        "I want this escalated to a manager, and I want out of my contract with no exit fee.",
        "Honestly, I'm cancelling. {competitor} can have my money instead.",
        "Fix it today or close my account - I've already got a quote from {competitor}.",
    ];
    pub const ESC_RECOVER: Frags = &[
        "{first}, I'm genuinely sorry - you should never have had to contact us three times. I've taken personal ownership of ticket {ticket}.",
        "You're completely right, {first}, and I apologise for the runaround. I'm a team lead and I'm handling this myself now.",
        "I've read through all of your previous messages, {first}, and I understand why you're angry.",
    ];
    pub const ESC_CREDIT: Frags = &[
        "I've also added a {credit} credit to your account, and I'll call you on {callback} to confirm everything is resolved.",
        "On top of that I've applied a {credit} goodwill credit and waived any exit fees, whatever you decide.",
    ];
    /// Anxious worries and matching reassurances by family: billing, delivery, outage, other.
    pub const ANX_LINES: [Frags; 4] = [
        &[
            "That money was meant for my rent, which is due on {deadline}.",
            "I'm on a tight budget and losing {amount} means I can't cover my bills this week.",
            "I'm worried I'll go overdrawn before {deadline} if this isn't returned.",
        ],
        &[
            "I need it set up before {deadline} - my new job starts that day and I'm working from home.",
            "I paid {amount} and I'm scared that money is just gone if the parcel is lost.",
            "My landlord's inspection is on {deadline} and the {device} has to be installed by then.",
        ],
        &[
            "I have an online exam on {deadline} and I can't afford to be offline.",
            "I work from home and I'll lose pay if I can't log on by {deadline}.",
            "My dad relies on video calls with his doctor and the next one is {deadline}.",
        ],
        &[
            "I'm worried I'll be hit with a fee I can't afford.", "I need this sorted before {deadline} or my payment will bounce.",
            "I'm scared I'll lose my phone number if this goes wrong.",
        ],
    ];
    pub const ANX_REASSURE: [Frags; 4] = [
        &[
            "Your money isn't lost: the refund of {amount} was sent today and I've flagged it as urgent, so it should land before {deadline}.",
            "I've issued the {amount} back to you immediately and added a note so no further payment is taken before {deadline}.",
        ],
        &[
            "I've upgraded the replacement to next-day express so it arrives {eta}, well ahead of {deadline}.",
            "You won't lose the {amount}: if the parcel doesn't arrive by {eta}, it's refunded automatically.",
        ],
        &[
            "I've booked the earliest engineer slot, {eta}, and I'm sending a free 5G hotspot today so you're online for {deadline}.",
            "I've prioritised your line and a 5G backup hotspot ships today, so you'll be connected before {deadline}.",
        ],
        &[
            "There won't be any fee and your number stays yours - I've written that on the account.",
            "I've put a hold on the account so nothing is charged before {deadline}.",
        ],
    ];
    pub const ANX_FOLLOW: Frags = &[
        "Thank you. Just to be sure - it'll definitely be sorted before {deadline}?", "Ok. Is there anything I need to do in the meantime?",
        "Thanks {agent}. Sorry for panicking, it's just been a stressful week.",
    ];
    pub const ANX_CONFIRM: Frags = &[
        "Yes - I've put {deadline} on ticket {ticket} and I'll check in with you on {eta} myself.",
        "Nothing needed from you, {first}. You'll get a text as soon as it's done, and you can reply here any time.",
        "No need to apologise at all, {first}. It's all in hand and I'll keep an eye on it until it's resolved.",
    ];
    /// Survey comments: positive, mixed, negative.
    pub const SURVEY_COMMENTS: [Frags; 3] = [
        &[
            "{agent} on the phone was fantastic and fixed it in minutes.", "Fast, reliable internet - no complaints at all.",
            "The app makes it really easy to keep an eye on my usage.", "Install was quick and the engineer left everything tidy.",
            "Great value compared to my last provider.", "{plan} has been rock solid for gaming and streaming.",
        ],
        &[
            "Speeds are good but the bill is confusing.", "Support was helpful once I got through, but the wait was long.",
            "Decent service, though the price keeps creeping up.", "Mostly fine. Wi-Fi is patchy upstairs.",
            "Took {days} days to sort out but got there in the end.",
        ],
        &[
            "Third outage this month. Not good enough.", "I was promised a callback that never happened.",
            "Paying for {plan} and not getting anywhere near it.", "Billing mistakes every other month, I'm looking elsewhere.",
            "Took {days} days to get a simple refund.", "Chat bot went round in circles and I gave up.",
        ],
    ];
}
use frag::*;

// ------------------------------------------------------------------- helpers

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn ts(ms: i64) -> String {
    at(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn pick<T: Copy>(rng: &mut Rand, xs: &[T]) -> T {
    xs[rng.gen_range(0..xs.len())]
}

fn weighted_by<T>(rng: &mut Rand, items: &[T], w: impl Fn(&T) -> f64) -> usize {
    let total: f64 = items.iter().map(&w).sum();
    let mut x = rng.gen::<f64>() * total;
    for (i, item) in items.iter().enumerate() {
        x -= w(item);
        if x < 0.0 {
            return i;
        }
    }
    items.len().saturating_sub(1)
}

fn weighted(rng: &mut Rand, ws: &[f64]) -> usize {
    weighted_by(rng, ws, |w| *w)
}

fn money(cents: u32) -> f64 {
    f64::from(cents) / 100.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn slug(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn join(parts: Vec<String>) -> String {
    let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    parts.join(" ")
}

/// A time in `[lo, hi)` biased towards waking hours and weekdays in the customer's time zone.
fn sample_time(rng: &mut Rand, lo: i64, hi: i64, tz: i64) -> i64 {
    if hi <= lo {
        return lo;
    }
    let mut t = lo;
    for _ in 0..8 {
        t = rng.gen_range(lo..hi);
        let local = t + tz * HOUR;
        let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7); // 1970-01-01 was a Thursday
        let weekend = if weekday >= 5 { 0.75 } else { 1.0 };
        if rng.gen::<f64>() < HOUR_WEIGHTS[(local.rem_euclid(DAY) / HOUR) as usize] / 12.0 * weekend
        {
            break;
        }
    }
    t
}

// ------------------------------------------------------------------ customers

struct Profile {
    idx: usize,
    user_id: String,
    anon: String,
    first: &'static str,
    last: &'static str,
    email: String,
    phone: String,
    city: usize,
    plan: usize,
    created_ms: i64,
    start_ms: i64,
    ident_ms: i64,
    company: Option<(&'static str, &'static str)>,
    activity: f64,
    app_share: f64,
    ios: bool,
    /// -1 detractor, 0 passive, 1 promoter.
    mood: i8,
}

impl Profile {
    fn country(&self) -> &'static str {
        CITIES[self.city].1
    }
    fn currency(&self) -> &'static str {
        match self.country() {
            "GB" => "GBP",
            "CA" => "CAD",
            _ => "USD",
        }
    }
}

/// A customer's profile, from its own ChaCha stream so `live_activity` can rebuild it cheaply.
fn profile(seed: u64, idx: usize, now_ms: i64) -> Profile {
    let mut rng = Rand::seed_from_u64(seed);
    rng.set_stream(PROFILE_STREAM + idx as u64);
    let (first, last) = (pick(&mut rng, FIRST_NAMES), pick(&mut rng, LAST_NAMES));
    let city = weighted_by(&mut rng, CITIES, |c| c.3);
    let plan = weighted_by(&mut rng, PLANS, |p| p.4);
    let (f, l) = (slug(first), slug(last));
    let n = idx * 7 + rng.gen_range(1..=7); // unique per customer
    let local = match rng.gen_range(0..4) {
        0 => format!("{f}.{l}{n}"),
        1 => format!("{f}{l}{n}"),
        2 => format!("{}{l}{n}", &f[..1]),
        _ => format!("{f}_{l}{n}"),
    };
    let mut email = format!("{local}@{}", pick(&mut rng, EMAIL_DOMAINS));
    // Fictional numbers that still pass phone validation: North American 555-0100..0199
    // across many area codes, UK Ofcom drama ranges (unique for the first 4,000 customers).
    let mut phone = match CITIES[city].4 {
        "" => format!(
            "+1 {} 555 01{:02}",
            AREA_CODES[idx % AREA_CODES.len()],
            (idx / AREA_CODES.len()) % 100
        ),
        landline => format!("{landline}{:03}", (idx * 389) % 1000),
    };
    // A few records arrive dirty, as real ones do, so data-quality flags have something to show.
    if idx % 53 == 5 {
        phone = ["call after 6pm", "555-CALL-NOW", "0000"][idx % 3].to_owned();
    }
    if idx % 71 == 9 {
        email = email
            .replace(".com", "com")
            .replace(".org", "org")
            .replace(".net", "net");
    }
    let is_new = rng.gen_bool(0.3);
    let offset = if is_new {
        rng.gen_range(3 * DAY..88 * DAY)
    } else {
        rng.gen_range(70 * DAY..WINDOW - HOUR)
    };
    let start_ms = now_ms - offset;
    let ident_ms = start_ms + 15 * MINUTE;
    let tenure = rng.gen_range(100 * DAY..2200 * DAY);
    let business = rng.gen_bool(0.06);
    let company = business.then(|| (pick(&mut rng, COMPANIES), pick(&mut rng, TITLES)));
    // Heavy-tailed activity (a few heavy users, many light ones; truncated Pareto), scaled by
    // time as a customer. Only + - * / so the result is bit-identical on every platform.
    let (u, v): (f64, f64) = (rng.gen(), rng.gen());
    let activity = (0.5 + v) / (u + 0.03) * (now_ms - ident_ms) as f64 / WINDOW as f64;
    Profile {
        idx,
        user_id: format!("u_{:06}", idx + 1),
        first,
        last,
        email,
        phone,
        city,
        plan,
        created_ms: if is_new { ident_ms } else { now_ms - tenure },
        start_ms,
        ident_ms,
        company,
        activity,
        app_share: rng.gen_range(0.15..0.85),
        ios: rng.gen_bool(0.55),
        mood: [-1, 0, 1][weighted(&mut rng, &[20.0, 45.0, 35.0])],
        anon: format!("anon-{:016x}", rng.gen::<u64>()),
    }
}

// --------------------------------------------------------------------- events

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    User,
    Anon,
    Both,
}

/// An event before it gets its messageId and position in the sorted output.
struct Draft {
    ms: i64,
    cust: usize,
    ids: Ids,
    kind: &'static str,
    body: Value,
}

impl Draft {
    fn new(p: &Profile, ms: i64, ids: Ids, kind: &'static str, body: Value) -> Draft {
        Draft {
            ms,
            cust: p.idx,
            ids,
            kind,
            body,
        }
    }

    fn finish(self, message_id: String, ms: i64, user_id: &str, anon: &str) -> Value {
        let body = match self.body {
            Value::Object(body) => body,
            _ => Map::new(),
        };
        let mut m = Map::with_capacity(body.len() + 5);
        m.insert("type".into(), Value::from(self.kind));
        m.insert("messageId".into(), Value::from(message_id));
        m.insert("timestamp".into(), Value::from(ts(ms)));
        if self.ids != Ids::Anon {
            m.insert("userId".into(), Value::from(user_id));
        }
        if self.ids != Ids::User {
            m.insert("anonymousId".into(), Value::from(anon));
        }
        m.extend(body);
        Value::Object(m)
    }
}

/// A track event on channel `ch` ("app" gets the full app context).
fn track(p: &Profile, ms: i64, ch: &str, event: &str, properties: Value) -> Draft {
    let context = if ch == "app" {
        app_context(p)
    } else {
        channel(ch)
    };
    let body = json!({ "event": event, "properties": properties, "context": context });
    Draft::new(p, ms, Ids::User, "track", body)
}

fn channel(c: &str) -> Value {
    json!({ "channel": c })
}

fn app_context(p: &Profile) -> Value {
    let (os, device) = [("Android", "android"), ("iOS", "ios")][usize::from(p.ios)];
    json!({
        "channel": "app",
        "app": { "name": "Brightwave", "version": APP_VERSION },
        "os": { "name": os },
        "device": { "type": device },
    })
}

fn page(p: &Profile, ms: i64, idx: usize, ids: Ids) -> Draft {
    let (name, path, title, _) = PAGES[idx];
    let url = format!("{SITE}{path}");
    let body = json!({
        "name": name,
        "properties": { "url": url, "path": path, "title": title },
        "context": {
            "channel": "web",
            "page": { "url": url, "path": path, "title": title },
            "locale": format!("en-{}", p.country()),
        },
    });
    Draft::new(p, ms, ids, "page", body)
}

fn product_json(p: &Profile, i: usize, quantity: Option<u32>) -> Value {
    let (id, name, cents, category) = PRODUCTS[i];
    let mut v = json!({
        "product_id": id, "sku": id.to_uppercase(), "name": name, "price": money(cents),
        "category": category, "currency": p.currency(),
    });
    if let Some(q) = quantity {
        v["quantity"] = Value::from(q);
    }
    v
}

fn identify(p: &Profile, ms: i64) -> Draft {
    let (city, country, ..) = CITIES[p.city];
    let mut traits = json!({
        "first_name": p.first, "last_name": p.last, "name": format!("{} {}", p.first, p.last),
        "email": p.email, "phone": p.phone, "plan": PLANS[p.plan].0, "city": city,
        "country": country, "created_at": ts(p.created_ms),
    });
    if let Some((company, title)) = p.company {
        traits["company"] = Value::from(company);
        traits["title"] = Value::from(title);
    }
    let mut context = channel("web");
    // Consent as Segment's consent-aware libraries send it; varied but fixed per customer.
    let h = email_hash(&p.email);
    // An age band (what fairness audits group offers by) and, for about one customer in
    // sixty, a vulnerability flag (what the oversight policy holds every action for).
    traits["age_band"] = Value::from(age_band(h));
    if h.is_multiple_of(61) {
        traits["vulnerable"] = Value::from(true);
    }
    context["consent"] = json!({"categoryPreferences": {
        "Analytics": !h.is_multiple_of(10),
        "Marketing Email": h % 5 < 3,
        "Marketing SMS": h.is_multiple_of(4),
        "Personalization": h % 10 < 7,
        "Profiling": (h / 10).is_multiple_of(2),
    }});
    let body = json!({ "traits": traits, "context": context });
    Draft::new(p, ms, Ids::Both, "identify", body)
}

/// The demo customer's age band, from the hash of their email (fixed per customer).
pub fn age_band(h: u32) -> &'static str {
    ["18-24", "25-34", "35-49", "50-64", "65+"][((h / 13) % 5) as usize]
}

/// The hash [`age_band`] and the demo's consent choices are drawn from.
pub fn email_hash(email: &str) -> u32 {
    email
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
}

/// Session kinds and base weights; "web" and "app" are scaled by the customer's app affinity.
#[rustfmt::skip]
const SESSIONS: [(&str, f64); 8] = [
    ("web", 60.0), ("shop", 3.5), ("app", 60.0), ("email", 12.0), ("chat", 1.5), ("voice", 3.0), ("survey", 3.0),
    ("renewal", 2.5),
];

/// Appends one session's events, in ascending time from `start`.
fn session(rng: &mut Rand, p: &Profile, kind: &str, start: i64, out: &mut Vec<Draft>) {
    let mut t = start;
    match kind {
        "web" => {
            let ids = if rng.gen_bool(0.2) {
                Ids::Both
            } else {
                Ids::User
            };
            for _ in 0..=weighted(rng, &[30.0, 25.0, 20.0, 15.0, 10.0]) {
                let i = weighted_by(rng, PAGES, |x| x.3);
                out.push(page(p, t, i, ids));
                if (i == PAGE_SHOP || i == PAGE_SMART_HOME) && rng.gen_bool(0.6) {
                    t += rng.gen_range(5_000..60_000);
                    out.push(product_viewed(p, t, rng.gen_range(0..PRODUCTS.len())));
                }
                t += rng.gen_range(8_000..240_000);
            }
        }
        "shop" => {
            out.push(page(p, t, PAGE_SHOP, Ids::User));
            let mut viewed = Vec::new();
            for _ in 0..rng.gen_range(1..=3) {
                t += rng.gen_range(10_000..120_000);
                let i = rng.gen_range(0..PRODUCTS.len());
                out.push(product_viewed(p, t, i));
                if !viewed.contains(&i) && (viewed.is_empty() || rng.gen_bool(0.4)) {
                    viewed.push(i);
                }
            }
            if rng.gen_bool(0.65) {
                t += rng.gen_range(30_000..300_000);
                out.push(page(p, t, PAGE_CHECKOUT, Ids::User));
                t += rng.gen_range(40_000..400_000);
                let qty =
                    |i: usize| 1 + u32::from(matches!(PRODUCTS[i].0, "bw-plug-2" | "bw-leak"));
                let cents: u32 = viewed.iter().map(|&i| PRODUCTS[i].2 * qty(i)).sum();
                let products: Vec<Value> = viewed
                    .iter()
                    .map(|&i| product_json(p, i, Some(qty(i))))
                    .collect();
                let props = json!({
                    "order_id": format!("BW-{}", rng.gen_range(1_000_000..10_000_000)),
                    "revenue": money(cents), "currency": p.currency(), "products": products,
                    "shipping_method": pick(rng, &["standard", "express", "click-and-collect"]),
                });
                out.push(track(p, t, "purchase", "Order Completed", props));
            }
        }
        "app" => {
            let props = json!({ "version": APP_VERSION, "from_background": rng.gen_bool(0.4) });
            out.push(track(p, t, "app", "App Opened", props));
            for _ in 0..rng.gen_range(1..=4) {
                t += rng.gen_range(3_000..90_000);
                let name = SCREENS[weighted_by(rng, SCREENS, |s| s.1)].0;
                let body = json!({ "name": name, "properties": { "name": name }, "context": app_context(p) });
                out.push(Draft::new(p, t, Ids::User, "screen", body));
                if name == "Speed Test" {
                    t += rng.gen_range(15_000..40_000);
                    out.push(track(p, t, "app", "Speed Test Run", speed_props(rng, p)));
                }
            }
        }
        "email" => {
            let (id, name, subject, landing) = pick(rng, CAMPAIGNS);
            let mut props =
                json!({ "campaign_id": id, "campaign_name": name, "email_subject": subject });
            out.push(track(p, t, "email", "Email Opened", props.clone()));
            if rng.gen_bool(0.3) {
                t += rng.gen_range(5_000..120_000);
                props["link_url"] = format!("{SITE}{}?utm_campaign={id}", PAGES[landing].1).into();
                out.push(track(p, t, "email", "Email Link Clicked", props));
                if rng.gen_bool(0.5) {
                    out.push(page(p, t + rng.gen_range(1_000..6_000), landing, Ids::Both));
                }
            }
        }
        "chat" => {
            out.push(page(p, t, PAGE_SUPPORT, Ids::User));
            t += rng.gen_range(10_000..90_000);
            let topic = TOPICS[weighted_by(rng, &TOPICS, |x| x.weight)].key;
            out.push(chat_started(rng, p, t, topic));
        }
        "voice" => {
            let family = weighted(rng, &[30.0, 10.0, 35.0, 10.0, 15.0]);
            let secs = rng.gen_range(90..1500);
            out.push(call_completed(rng, p, t, family, secs, "resolved"));
        }
        "survey" => {
            let trigger = pick(rng, &["quarterly", "post-install", "in-app"]);
            out.push(survey(rng, p, t, p.mood, trigger, false));
        }
        "renewal" => {
            let (plan, _, cents, ..) = PLANS[p.plan];
            let method = pick(rng, &["card", "card", "direct_debit", "paypal"]);
            let props = json!({
                "plan": plan, "amount": money(cents), "currency": p.currency(),
                "billing_period": "monthly", "payment_method": method,
            });
            out.push(track(p, t, "purchase", "Subscription Renewed", props));
        }
        _ => {}
    }
}

fn product_viewed(p: &Profile, ms: i64, i: usize) -> Draft {
    track(p, ms, "web", "Product Viewed", product_json(p, i, None))
}

fn chat_started(rng: &mut Rand, p: &Profile, ms: i64, topic: &str) -> Draft {
    let entry = pick(rng, &["support_page", "app", "account", "checkout"]);
    let props = json!({ "topic": topic, "entry_point": entry });
    track(p, ms, "chat", "Chat Started", props)
}

fn speed_props(rng: &mut Rand, p: &Profile) -> Value {
    let (plan, _, _, mbps, _) = PLANS[p.plan];
    let mobile = plan.starts_with("mobile");
    let wired = !mobile && rng.gen_bool(0.3);
    let factor = if wired {
        rng.gen_range(0.75..1.02)
    } else {
        rng.gen_range(0.25..0.9)
    };
    let slow = if p.mood < 0 && rng.gen_bool(0.3) {
        0.3
    } else {
        1.0
    };
    let down = f64::from(mbps) * factor * slow;
    let up = down
        * if mobile {
            rng.gen_range(0.1..0.3)
        } else {
            rng.gen_range(0.6..1.0)
        };
    let latency = if mobile {
        rng.gen_range(18..60)
    } else {
        rng.gen_range(3..22)
    };
    let connection = ["wifi", "ethernet", "5g"][usize::from(wired) + 2 * usize::from(mobile)];
    json!({
        "download_mbps": round1(down), "upload_mbps": round1(up),
        "latency_ms": latency, "connection": connection,
    })
}

fn call_completed(
    rng: &mut Rand,
    p: &Profile,
    ms: i64,
    family: usize,
    secs: i64,
    outcome: &str,
) -> Draft {
    let props = json!({
        "call_id": format!("call-{:08x}", rng.gen::<u32>()),
        "queue": QUEUES[family.min(QUEUES.len() - 1)],
        "duration_seconds": secs,
        "wait_seconds": rng.gen_range(5..900),
        "outcome": outcome,
    });
    track(p, ms, "voice", "Call Completed", props)
}

fn survey(rng: &mut Rand, p: &Profile, ms: i64, mood: i8, trigger: &str, csat_only: bool) -> Draft {
    let nps = !csat_only && rng.gen_bool(0.6);
    let score: u8 = match (nps, rng.gen_bool(0.1), mood) {
        (true, true, _) => rng.gen_range(0..=10),
        (true, false, 1) => rng.gen_range(8..=10),
        (true, false, 0) => rng.gen_range(6..=9),
        (true, false, _) => rng.gen_range(0..=7),
        (false, true, _) => rng.gen_range(1..=5),
        (false, false, 1) => rng.gen_range(4..=5),
        (false, false, 0) => rng.gen_range(3..=5),
        (false, false, _) => rng.gen_range(1..=3),
    };
    let bucket = match (nps, score) {
        (true, 9..) | (false, 5) => 0,
        (true, 7..=8) | (false, 3..=4) => 1,
        _ => 2,
    };
    let survey = if nps { "nps" } else { "csat" };
    let mut props = json!({ "survey": survey, "score": score, "trigger": trigger });
    if rng.gen_bool(0.45) {
        let pool = SURVEY_COMMENTS[bucket];
        let a = rng.gen_range(0..pool.len());
        let mut comment = pool[a].to_string();
        if rng.gen_bool(0.35) {
            let b = (a + rng.gen_range(1..pool.len())) % pool.len();
            comment = format!("{comment} {}", pool[b]);
        }
        let comment = comment
            .replace("{agent}", pick(rng, AGENTS))
            .replace("{plan}", PLANS[p.plan].1)
            .replace("{days}", &rng.gen_range(3..15).to_string());
        props["comment"] = Value::from(comment);
    }
    track(p, ms, "survey", "Survey Responded", props)
}

/// All of one customer's regular activity: anonymous visits, identify, optional plan change, sessions.
fn customer_events(rng: &mut Rand, p: &Profile, budget: usize, now_ms: i64, out: &mut Vec<Draft>) {
    let before = out.len();
    let mut t = p.start_ms;
    let o = rng.gen_range(0..LANDING.len());
    for k in 0..rng.gen_range(2..=4) {
        // Step 3 through LANDING (7 entries): no page is viewed twice in a row.
        out.push(page(p, t, LANDING[(o + 3 * k) % LANDING.len()], Ids::Anon));
        t += rng.gen_range(20_000..180_000);
    }
    out.push(identify(p, p.ident_ms));
    if rng.gen_bool(0.15) && p.ident_ms + 5 * DAY < now_ms - 12 * HOUR {
        let when = rng.gen_range(p.ident_ms + 5 * DAY..now_ms - 12 * HOUR);
        let from = PLANS[p.plan];
        let to = PLANS[(p.plan + rng.gen_range(1..PLANS.len())) % PLANS.len()];
        let change = ["downgrade", "upgrade"][usize::from(to.2 > from.2)];
        let delta = (f64::from(to.2) - f64::from(from.2)) / 100.0;
        let props =
            json!({ "previous_plan": from.0, "plan": to.0, "change": change, "mrr_delta": delta });
        out.push(track(p, when, "purchase", "Plan Changed", props));
        let body = json!({ "traits": { "plan": to.0 }, "context": channel("web") });
        out.push(Draft::new(p, when + 1_500, Ids::User, "identify", body));
    }
    let (lo, hi, tz) = (p.ident_ms + 10 * MINUTE, now_ms - HOUR, CITIES[p.city].2);
    let weights = SESSIONS.map(|(kind, w)| match kind {
        "web" => w * (1.0 - p.app_share),
        "app" => w * p.app_share,
        _ => w,
    });
    let mut guard = 0;
    while lo < hi && out.len() - before < budget && guard < budget * 4 {
        guard += 1;
        let start = sample_time(rng, lo, hi, tz);
        let (kind, mark) = (SESSIONS[weighted(rng, &weights)].0, out.len());
        session(rng, p, kind, start, out);
        while out.len() > mark && out.last().is_some_and(|d| d.ms > now_ms) {
            out.pop();
        }
    }
}

// -------------------------------------------------------------- conversations

/// Concrete details shared by all messages of one conversation, for `{key}` placeholders.
struct Ctx(Vec<(&'static str, String)>);

impl Ctx {
    fn new(rng: &mut Rand, p: &Profile, ms: i64, t: &Topic) -> Ctx {
        let sym = if p.country() == "GB" { "£" } else { "$" };
        let cash = |c: u32| format!("{sym}{}.{:02}", c / 100, c % 100);
        let day = |ms: i64, f: &str| at(ms).format(f).to_string();
        let d = rng.gen_range(0..PRODUCTS.len() - 1);
        let w = (d + rng.gen_range(1..PRODUCTS.len())) % PRODUCTS.len();
        let days = rng.gen_range(2..=9);
        let (price, mbps) = (PLANS[p.plan].2, PLANS[p.plan].3);
        // Amounts in play: a device price for orders and returns, otherwise a month's bill.
        let amount = if t.family == 1 || t.key == "billing-refund" {
            PRODUCTS[d].2
        } else {
            price + rng.gen_range(0..price / 3)
        };
        let (order, ticket) = (
            rng.gen_range(1_000_000..10_000_000),
            rng.gen_range(100_000..1_000_000),
        );
        let credit = pick(rng, &[1_000, 1_500, 2_000, 2_500, 5_000]);
        let (eta, deadline, callback) = (
            rng.gen_range(1..=2),
            rng.gen_range(3..=7),
            rng.gen_range(4..=5),
        );
        let speed = rng.gen_range((mbps / 25).max(2)..(mbps / 3).max(3));
        Ctx(vec![
            ("first", p.first.to_string()),
            ("agent", pick(rng, AGENTS).to_string()),
            ("order", format!("BW-{order}")),
            ("ticket", format!("CS-{ticket}")),
            ("amount", cash(amount)),
            ("fee", cash(rng.gen_range(400..(price * 2 / 5).max(900)))),
            ("fee_name", pick(rng, FEE_NAMES).to_string()),
            ("credit", cash(credit)),
            ("device", PRODUCTS[d].1.to_string()),
            ("wrong", PRODUCTS[w].1.to_string()),
            ("days", days.to_string()),
            ("date", day(ms - days * DAY, "%B %-d")),
            ("eta", day(ms + eta * DAY, "%A %B %-d")),
            ("deadline", day(ms + deadline * DAY, "%A, %B %-d")),
            ("callback", day(ms + callback * DAY, "%A %B %-d")),
            ("month", day(ms - 20 * DAY, "%B")),
            ("speed", speed.to_string()),
            ("plan", PLANS[p.plan].1.to_string()),
            ("plan_speed", mbps.to_string()),
            ("competitor", pick(rng, COMPETITORS).to_string()),
            ("last4", format!("{:04}", rng.gen_range(0..10_000))),
            ("city", CITIES[p.city].0.to_string()),
            ("refund_window", pick(rng, REFUND_WINDOWS).to_string()),
        ])
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    fn var(&self, key: &str) -> &str {
        self.get(key).unwrap_or_default()
    }

    /// Replaces `{key}` placeholders in a template.
    fn fill(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            match tail
                .find('}')
                .and_then(|j| self.get(&tail[1..j]).map(|v| (v, j)))
            {
                Some((value, j)) => {
                    out.push_str(value);
                    rest = &tail[j + 1..];
                }
                None => {
                    out.push('{');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// Writes one conversation: picks and fills fragments and frames them for the channel.
struct Script<'a> {
    rng: &'a mut Rand,
    c: Ctx,
    ch: &'static str,
    subject: String,
    lines: Vec<(&'static str, String)>,
}

impl<'a> Script<'a> {
    /// Picks channel, topic and tone for a new conversation with `p` at `ms`.
    fn open(rng: &'a mut Rand, p: &Profile, ms: i64) -> (Script<'a>, &'static Topic, usize) {
        let ch = CHANNELS[weighted(rng, CHANNEL_WEIGHTS)];
        let t = &TOPICS[weighted_by(rng, &TOPICS, |t| t.weight)];
        let tone = pick_tone(rng, p.mood);
        let c = Ctx::new(rng, p, ms, t);
        let subject = c.fill(pick(rng, t.subjects));
        let lines = Vec::new();
        (
            Script {
                rng,
                c,
                ch,
                subject,
                lines,
            },
            t,
            tone,
        )
    }

    fn compose(&mut self, parts: &[Frags]) -> String {
        let texts = parts.iter().map(|&xs| self.c.fill(pick(self.rng, xs)));
        join(texts.collect())
    }

    fn customer(&mut self, tone: usize, parts: &[Frags]) {
        let body = self.compose(parts);
        let first = self.lines.is_empty();
        let rng = &mut *self.rng;
        let text = match (self.ch, first) {
            ("email", true) => {
                let greet = if tone == ANGRY {
                    "To whom it may concern,"
                } else {
                    pick(rng, EMAIL_GREETINGS)
                };
                let name = self.c.var("first");
                format!("{greet}\n\n{body}\n\n{}\n{name}", pick(rng, EMAIL_SIGNOFFS))
            }
            ("email", false) => format!(
                "Hi {},\n\n{body}\n\n{}",
                self.c.var("agent"),
                self.c.var("first")
            ),
            ("voice", true) => format!("{} {body}", pick(rng, VOICE_OPENERS)),
            ("voice", false) if rng.gen_bool(0.6) => format!("{} {body}", pick(rng, VOICE_FILLERS)),
            ("social", true) => format!("{} {body}", pick(rng, SOCIAL_HANDLES)),
            ("chat" | "sms", true) if tone != ANGRY && rng.gen_bool(0.6) => {
                format!("{} {body}", pick(rng, GREETINGS))
            }
            _ => body,
        };
        self.lines.push(("customer", text));
    }

    fn bot(&mut self, parts: &[Frags]) {
        let text = self.compose(parts);
        self.lines.push(("bot", text));
    }

    fn agent(&mut self, parts: &[Frags]) {
        let first = !self.lines.iter().any(|(author, _)| *author == "agent");
        let after_bot = self.lines.iter().any(|(author, _)| *author == "bot");
        let prefix: &[Frags] = match self.ch {
            "voice" if first => &[VOICE_AGENT_INTROS, VOICE_AGENT_LOOKUPS],
            "voice" if self.rng.gen_bool(0.5) => &[VOICE_AGENT_FILLERS],
            "chat" | "sms" | "social" if first && after_bot => &[AGENT_HANDOFFS],
            "chat" | "sms" | "social" if first => &[AGENT_INTROS],
            _ => &[],
        };
        let parts: Vec<Frags> = prefix.iter().chain(parts).copied().collect();
        let body = self.compose(&parts);
        let text = if self.ch == "email" {
            let signoff = pick(self.rng, AGENT_SIGNOFFS);
            let (name, agent) = (self.c.var("first"), self.c.var("agent"));
            format!("Hi {name},\n\n{body}\n\n{signoff}\n{agent}\nBrightwave Customer Care")
        } else {
            body
        };
        self.lines.push(("agent", text));
    }
}

/// Fragment lists for a customer's opening message.
fn opening_parts(rng: &mut Rand, ch: &str, t: &Topic, tone: usize, anxious: bool) -> Vec<Frags> {
    let tn = &TONES[tone];
    let mut parts = Vec::new();
    if tone != NEUTRAL || rng.gen_bool(0.6) {
        parts.push(tn.openers);
    }
    parts.push(t.problems);
    let detail = if matches!(ch, "sms" | "social") {
        0.3
    } else {
        0.65
    };
    if rng.gen_bool(detail) {
        parts.push(t.details);
    }
    if anxious {
        parts.push(ANX_LINES[t.family.min(3)]);
    }
    if rng.gen_bool(0.7) {
        parts.push(tn.asks);
    }
    parts
}

fn gap(rng: &mut Rand, ch: &str, author: &str) -> i64 {
    let (lo, hi) = match (ch, author) {
        (_, "bot") => (4_000, 20_000),
        ("voice", _) => (15_000, 150_000),
        ("chat", _) => (40_000, 6 * MINUTE),
        ("sms", _) => (2 * MINUTE, 25 * MINUTE),
        ("social", _) => (8 * MINUTE, 90 * MINUTE),
        _ => (45 * MINUTE, 8 * HOUR),
    };
    rng.gen_range(lo..hi)
}

fn pick_tone(rng: &mut Rand, mood: i8) -> usize {
    let w = TONES.iter().enumerate().map(|(i, t)| match (i, mood) {
        (ANGRY, -1) | (DELIGHTED, 1) => t.weight * 2.0,
        (DELIGHTED, -1) => t.weight * 0.3,
        (ANGRY, 1) => t.weight * 0.5,
        _ => t.weight,
    });
    weighted(rng, &w.collect::<Vec<_>>())
}

/// A whole conversation starting at `start`; related events (chat, call, survey) go to `out`.
fn conversation(
    rng: &mut Rand,
    p: &Profile,
    start: i64,
    now_ms: i64,
    out: &mut Vec<Draft>,
) -> DemoConversation {
    let (mut s, t, tone) = Script::open(&mut *rng, p, start);
    let (ch, tn) = (s.ch, &TONES[tone]);
    let escalating = tone == ANGRY && t.family != 4 && s.rng.gen_bool(0.5);
    let anxious = tone == ANXIOUS && s.rng.gen_bool(0.7);
    if escalating {
        let suffix = [" - still not fixed", " - 3rd time asking", " (URGENT)", ""];
        s.subject.push_str(pick(s.rng, &suffix));
        // Polite, then annoyed, then furious: the classic repeated-contact thread.
        s.customer(NEUTRAL, &[t.problems, t.details, TONES[NEUTRAL].asks]);
        s.agent(&[ESC_HOLD]);
        s.customer(ANGRY, &[ESC_ANNOYED, t.problems, ESC_ANNOYED_ASK]);
        s.agent(&[ESC_HOLD]);
        s.customer(ANGRY, &[ESC_FURIOUS, tn.openers, ESC_THREAT]);
        s.agent(&[ESC_RECOVER, t.actions, ESC_CREDIT]);
    } else {
        let parts = opening_parts(s.rng, ch, t, tone, anxious);
        s.customer(tone, &parts);
        if matches!(ch, "chat" | "sms" | "social") && s.rng.gen_bool(0.45) {
            s.bot(&[BOT_GREETINGS, t.bot_q]);
            s.customer(tone, &[t.answers]);
        }
        let mut reply = vec![tn.empathy];
        if anxious {
            reply.push(ANX_REASSURE[t.family.min(3)]);
        }
        reply.push(t.actions);
        if s.rng.gen_bool(0.5) {
            reply.push(AGENT_CLOSINGS);
        }
        s.agent(&reply);
        if anxious {
            s.customer(tone, &[ANX_FOLLOW]);
            s.agent(&[ANX_CONFIRM]);
        } else if s.rng.gen_bool(0.6) {
            let parts: &[Frags] = if s.rng.gen_bool(0.5) {
                &[tn.reactions, t.followups]
            } else {
                &[tn.reactions]
            };
            s.customer(tone, parts);
            if s.rng.gen_bool(0.7) {
                s.agent(&[AGENT_FINALS]);
            }
        }
    }
    let Script { lines, subject, .. } = s;
    // Minutes apart (hours for email; escalations on async channels span days), never past `now`.
    let mut times = Vec::with_capacity(lines.len());
    let mut ms = start;
    for (k, (author, _)) in lines.iter().enumerate() {
        if k > 0 {
            ms += gap(rng, ch, author);
            if escalating && *author == "customer" && matches!(ch, "email" | "sms" | "social") {
                ms += rng.gen_range(4 * HOUR..30 * HOUR);
            }
        }
        times.push(ms);
    }
    let overshoot = (ms - (now_ms - MINUTE)).max(0);
    times.iter_mut().for_each(|x| *x -= overshoot);
    let (first_ms, last_ms) = (times[0], ms - overshoot);
    if ch == "chat" {
        out.push(chat_started(rng, p, first_ms, t.key));
    } else if ch == "voice" {
        let outcome = if escalating { "escalated" } else { "resolved" };
        let secs = (last_ms - first_ms) / 1000 + rng.gen_range(30..120);
        out.push(call_completed(
            rng,
            p,
            last_ms + 20_000,
            t.family,
            secs,
            outcome,
        ));
    }
    let survey_at = last_ms + rng.gen_range(10 * MINUTE..2 * HOUR);
    if rng.gen_bool(0.35) && survey_at <= now_ms {
        let mood = match tone {
            ANGRY => -1,
            DELIGHTED => 1,
            _ => pick(rng, &[0, 1, 1]),
        };
        let trigger = ["post-conversation", "post-call"][usize::from(ch == "voice")];
        out.push(survey(rng, p, survey_at, mood, trigger, true));
    }
    let messages = lines.into_iter().zip(times);
    let messages = messages.map(|((author, text), ms)| DemoMessage {
        direction: ["outbound", "inbound"][usize::from(author == "customer")],
        author,
        text,
        at: at(ms),
    });
    DemoConversation {
        user_id: p.user_id.clone(),
        channel: ch,
        subject,
        messages: messages.collect(),
    }
}

// ------------------------------------------------------------------ public API

/// Deterministic for a given (seed, customers, now).
pub fn generate(seed: u64, customers: usize, now: DateTime<Utc>) -> DemoCompany {
    let now_ms = now.timestamp_millis();
    let mut rng = Rand::seed_from_u64(seed);
    let profiles: Vec<Profile> = (0..customers).map(|i| profile(seed, i, now_ms)).collect();
    let total_activity: f64 = profiles.iter().map(|p| p.activity).sum();
    let spare = (customers * (EVENTS_PER_CUSTOMER - MIN_EVENTS)) as f64;
    let mut drafts: Vec<Draft> = Vec::with_capacity(customers * (EVENTS_PER_CUSTOMER + 3));
    for p in &profiles {
        let budget = MIN_EVENTS + (p.activity / total_activity * spare) as usize;
        customer_events(&mut rng, p, budget, now_ms, &mut drafts);
    }

    let mut conversations = Vec::new();
    for p in &profiles {
        if !rng.gen_bool(0.25) {
            continue;
        }
        for _ in 0..=weighted(&mut rng, &[70.0, 22.0, 8.0]) {
            // The first few conversations are pinned to the last two days, so the demo looks live.
            let start = if conversations.len() < 4 {
                now_ms - rng.gen_range(3 * HOUR..44 * HOUR)
            } else {
                sample_time(&mut rng, p.ident_ms + HOUR, now_ms - HOUR, CITIES[p.city].2)
            };
            conversations.push(conversation(&mut rng, p, start, now_ms, &mut drafts));
        }
    }
    conversations.sort_by_key(|c| c.messages.first().map(|m| m.at));
    cancellations(&mut rng, &profiles, &conversations, now_ms, &mut drafts);

    drafts.sort_by_key(|d| d.ms); // stable: ties keep generation order
    let events = drafts.into_iter().enumerate().map(|(n, d)| {
        let (p, ms) = (&profiles[d.cust], d.ms);
        d.finish(format!("demo-{seed}-{n}"), ms, &p.user_id, &p.anon)
    });
    DemoCompany {
        events: events.collect(),
        conversations,
    }
}

/// Some customers leave: detractors and customers who needed support often more than others,
/// so churn models trained on the demo have real signal. A leaver cancels after their last
/// conversation and their activity stops there.
fn cancellations(
    rng: &mut Rand,
    profiles: &[Profile],
    conversations: &[DemoConversation],
    now_ms: i64,
    drafts: &mut Vec<Draft>,
) {
    let mut last_contact: std::collections::HashMap<&str, (i64, usize)> = Default::default();
    for c in conversations {
        let end = c.messages.last().map_or(0, |m| m.at.timestamp_millis());
        let e = last_contact.entry(c.user_id.as_str()).or_insert((0, 0));
        *e = (e.0.max(end), e.1 + 1);
    }
    let mut gone: Vec<Option<i64>> = vec![None; profiles.len()];
    for p in profiles {
        let (contact, contacts) = last_contact
            .get(p.user_id.as_str())
            .copied()
            .unwrap_or((0, 0));
        let chance = (0.03 + if p.mood < 0 { 0.22 } else { 0.0 } + 0.08 * contacts as f64).min(0.6);
        if !rng.gen_bool(chance) {
            continue;
        }
        let lo = (p.ident_ms + 14 * DAY).max(contact + DAY);
        let hi = now_ms - 6 * HOUR;
        if lo >= hi {
            continue;
        }
        let when = rng.gen_range(lo..hi);
        gone[p.idx] = Some(when);
        let reason = [
            "price",
            "competitor offer",
            "service quality",
            "moving",
            "support experience",
        ][weighted(
            rng,
            &[
                3.0,
                3.0,
                2.0 + 2.0 * f64::from(p.mood < 0),
                1.0,
                1.0 + contacts as f64,
            ],
        )];
        let props = json!({ "plan": PLANS[p.plan].0, "reason": reason });
        drafts.push(track(p, when, "web", "Subscription Cancelled", props));
    }
    // Nothing after the cancellation, and in the five weeks before it most of the activity
    // fades (a stable hash, so the same seed keeps the same company).
    drafts.retain(|d| match gone[d.cust] {
        Some(t) if d.ms > t => false,
        Some(t) if d.ms > t - 35 * DAY && d.kind != "identify" && d.ids != Ids::Anon => {
            let h = (d.ms as u64 ^ (d.cust as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (h >> 40) % 100 < 30 || d.ms == t
        }
        _ => true,
    });
}

/// A few live events (1..=4) and sometimes (~1 in 5 calls) one new conversation message,
/// for a "trickle" of live activity at time `now`.
pub fn live_activity(seed: u64, tick: u64, customers: usize, now: DateTime<Utc>) -> LiveActivity {
    let now_ms = now.timestamp_millis();
    let mut rng = Rand::seed_from_u64(seed);
    rng.set_stream(LIVE_STREAM.wrapping_add(tick));
    let population = customers.max(1);
    let want = rng.gen_range(1..=4);
    let (mut drafts, mut people) = (Vec::new(), Vec::new());
    while drafts.len() < want {
        let p = profile(seed, rng.gen_range(0..population), now_ms);
        let kinds = ["web", "app", "email", "shop"];
        let kind = kinds[weighted(&mut rng, &[40.0, 42.0, 12.0, 6.0])];
        session(&mut rng, &p, kind, now_ms, &mut drafts);
        people.push(p);
    }
    drafts.truncate(want);
    let events = drafts.into_iter().enumerate().map(|(k, d)| {
        let p = people.iter().find(|p| p.idx == d.cust);
        let (user, anon) = p.map_or(("", ""), |p| (p.user_id.as_str(), p.anon.as_str()));
        let ms = now_ms - (want - 1 - k) as i64 * 250; // ascending, ending at `now`
        d.finish(format!("live-{seed}-{tick}-{k}"), ms, user, anon)
    });
    let events = events.collect();
    let message = rng.gen_bool(0.2).then(|| {
        let p = profile(seed, rng.gen_range(0..population), now_ms);
        let (mut s, t, tone) = Script::open(&mut rng, &p, now_ms);
        let anxious = tone == ANXIOUS && s.rng.gen_bool(0.5);
        let parts = opening_parts(s.rng, s.ch, t, tone, anxious);
        s.customer(tone, &parts);
        let text = s.lines.pop().map(|(_, text)| text).unwrap_or_default();
        let (ch, subject) = (s.ch, s.subject);
        let msg = DemoMessage {
            direction: "inbound",
            author: "customer",
            text,
            at: at(now_ms),
        };
        (p.user_id, ch, subject, msg)
    });
    LiveActivity { events, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};
    use std::sync::OnceLock;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-14T15:09:26.535Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn full() -> &'static DemoCompany {
        static FULL: OnceLock<DemoCompany> = OnceLock::new();
        FULL.get_or_init(|| generate(42, 2000, now()))
    }

    fn texts(c: &DemoCompany) -> Vec<String> {
        c.conversations
            .iter()
            .flat_map(|c| c.messages.iter().map(|m| m.text.clone()))
            .collect()
    }

    #[test]
    fn demo_generate_is_deterministic() {
        let (a, b, c) = (
            generate(7, 150, now()),
            generate(7, 150, now()),
            generate(8, 150, now()),
        );
        let json = |d: &DemoCompany| serde_json::to_string(&d.events).unwrap();
        assert_eq!(json(&a), json(&b));
        assert_eq!(texts(&a), texts(&b));
        assert_ne!(json(&a), json(&c));
        assert_ne!(texts(&a), texts(&c));
    }

    #[test]
    fn demo_generate_counts_ids_and_times() {
        let d = full();
        assert!(d.events.len() >= 100_000, "only {} events", d.events.len());
        let users: HashSet<&str> = d
            .events
            .iter()
            .filter_map(|e| e["userId"].as_str())
            .collect();
        assert!(users.len() >= 2000);
        let ids: HashSet<&str> = d
            .events
            .iter()
            .map(|e| e["messageId"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), d.events.len());
        let (lo, hi) = (now() - chrono::Duration::days(90), now());
        let mut prev = "";
        for e in &d.events {
            let ts = e["timestamp"].as_str().unwrap();
            assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
            let t = DateTime::parse_from_rfc3339(ts).unwrap();
            assert!(t >= lo && t <= hi, "{ts} out of range");
            assert!(ts >= prev, "events not sorted");
            prev = ts;
            assert!(["identify", "track", "page", "screen"].contains(&e["type"].as_str().unwrap()));
            assert!(e["context"]["channel"].is_string());
        }
    }

    #[test]
    fn demo_generate_identities_and_stitching() {
        let d = full();
        let mut emails = BTreeMap::new();
        let mut first_seen: BTreeMap<&str, &Value> = BTreeMap::new();
        for e in &d.events {
            if let Some(a) = e["anonymousId"].as_str() {
                first_seen.entry(a).or_insert(e);
            }
            if let (Some(u), Some(m)) = (e["userId"].as_str(), e["traits"]["email"].as_str()) {
                assert!(e["anonymousId"].is_string() && e["traits"]["name"].is_string());
                let domain = m.rsplit('@').next().unwrap();
                // Reserved example domains only; a few are deliberately missing their dot.
                assert!(
                    [
                        "example.com",
                        "example.org",
                        "example.net",
                        "examplecom",
                        "exampleorg",
                        "examplenet"
                    ]
                    .contains(&domain),
                    "{m}"
                );
                assert_eq!(m, m.to_lowercase());
                emails.insert(u, m);
            }
        }
        assert_eq!(emails.len(), 2000);
        assert_eq!(
            emails.values().collect::<HashSet<_>>().len(),
            2000,
            "emails must be unique"
        );
        assert_eq!(first_seen.len(), 2000);
        assert!(first_seen
            .values()
            .all(|e| e["type"] == "page" && e["userId"].is_null()));
    }

    #[test]
    fn demo_generate_channel_mix() {
        let d = full();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &d.events {
            *counts
                .entry(e["context"]["channel"].as_str().unwrap())
                .or_default() += 1;
        }
        let share = |c: &str| counts.get(c).copied().unwrap_or(0) as f64 / d.events.len() as f64;
        assert!(share("web") + share("app") > 0.7, "{counts:?}");
        assert!((0.01..0.08).contains(&share("purchase")), "{counts:?}");
        for c in ["voice", "survey"] {
            assert!((0.005..0.04).contains(&share(c)), "{counts:?}");
        }
        assert!(share("email") > 0.02 && share("chat") > 0.003, "{counts:?}");
    }

    #[test]
    fn demo_generate_conversations() {
        let d = full();
        let n = d.conversations.len();
        assert!((300..1500).contains(&n), "{n} conversations");
        let recent = now() - chrono::Duration::days(2);
        let (mut in_recent, mut escalations, mut inbound) = (0, 0, Vec::new());
        for c in &d.conversations {
            assert!(c.messages.len() >= 2 && CHANNELS.contains(&c.channel));
            assert!(c.messages.windows(2).all(|w| w[0].at <= w[1].at));
            assert!(c.messages.iter().all(|m| m.at <= now()));
            assert_eq!(c.messages[0].direction, "inbound");
            in_recent += usize::from(c.messages[0].at >= recent);
            let ins: Vec<&str> = c
                .messages
                .iter()
                .filter(|m| m.direction == "inbound")
                .map(|m| m.text.as_str())
                .collect();
            escalations += usize::from(
                ins.len() >= 3
                    && ins
                        .iter()
                        .any(|t| t.contains("THIRD") || t.contains("cancel")),
            );
            inbound.extend(ins);
        }
        assert!(in_recent >= 3, "{in_recent} recent conversations");
        assert!(escalations >= 5, "{escalations} escalations");
        let distinct = inbound.iter().collect::<HashSet<_>>().len();
        assert!(
            distinct * 10 >= inbound.len() * 7,
            "{distinct} of {}",
            inbound.len()
        );
        let all = texts(d);
        assert!(
            all.iter().all(|t| !t.contains('{') && !t.contains('}')),
            "unfilled placeholder"
        );
    }

    #[test]
    fn demo_live_activity() {
        let mut ids = HashSet::new();
        let mut messages = 0;
        for tick in 0..200 {
            let a = live_activity(3, tick, 2000, now());
            assert_eq!(a.events, live_activity(3, tick, 2000, now()).events);
            assert!((1..=4).contains(&a.events.len()));
            for e in &a.events {
                assert!(ids.insert(e["messageId"].as_str().unwrap().to_string()));
                let t = DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
                assert!(t <= now());
                let user = e["userId"].as_str().unwrap();
                assert!(user.starts_with("u_") && user[2..].parse::<usize>().unwrap() <= 2000);
            }
            if let Some((user, ch, subject, m)) = a.message {
                messages += 1;
                assert!(user.starts_with("u_") && CHANNELS.contains(&ch) && !subject.is_empty());
                assert_eq!(
                    (m.direction, m.author, m.at),
                    ("inbound", "customer", now())
                );
                assert!(!m.text.is_empty() && !m.text.contains('{'));
            }
        }
        assert!((20..=70).contains(&messages), "{messages} messages");
    }
}
