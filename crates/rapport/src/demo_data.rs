//! Deterministic demo data for `rapport demo`.
//!
//! Builds a fictional company, "Brightwave" (home fibre, mobile plans and
//! smart-home devices sold through an online shop), from a seed: customer
//! profiles, ~53 Segment-spec events per customer over the 90 days before
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

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const WINDOW: i64 = 90 * DAY;
/// Average events per customer; 2,000 customers give ~105,000 events.
const EVENTS_PER_CUSTOMER: usize = 53;
/// Anonymous pages + identify + a little activity, for even the lightest user.
const MIN_EVENTS: usize = 8;
/// ChaCha stream offsets, so profiles and live ticks never share a stream with `generate`.
const PROFILE_STREAM: u64 = 1 << 40;
const LIVE_STREAM: u64 = 2 << 40;
const APP_VERSION: &str = "5.14.2";
const SITE: &str = "https://www.brightwave.example";

// ---------------------------------------------------------------- data tables

const FIRST_NAMES: &[&str] = &[
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Lucas", "Isabella", "Ethan",
    "Mia", "James", "Amara", "Oliver", "Priya", "Aarav", "Chloe", "Daniel", "Zoe", "Samuel",
    "Hannah", "Kenji", "Yuki", "Grace", "Leo", "Fatima", "Omar", "Nora", "Elijah", "Layla",
    "Diego", "Sofia", "Caleb", "Aisha", "Ravi", "Megan", "Tomas", "Ingrid", "Callum", "Niamh",
    "Declan", "Freya", "Hamish", "Rosa", "Andre", "Chiara", "Marcus", "Tess", "Jamal", "Imani",
    "Wei", "Mei", "Jonah", "Elena", "Felix", "Ruby", "Arjun", "Lena", "Kofi", "Ama", "Patrick",
    "Sienna", "Hugo", "Maya",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Johnson", "Garcia", "Nguyen", "Patel", "Kim", "Okafor", "Mueller", "Rossi", "Silva",
    "Brown", "Taylor", "Wilson", "Martinez", "Chen", "Singh", "O'Connor", "MacLeod", "Hughes",
    "Evans", "Kowalski", "Novak", "Haddad", "Ahmed", "Lopez", "Walker", "Wright", "Clarke",
    "Murphy", "Kelly", "Fraser", "Campbell", "Tanaka", "Sato", "Ivanova", "Petrov", "Jensen",
    "Larsen", "Dubois", "Moreau", "Santos", "Costa", "Mendez", "Reyes", "Cohen", "Levi", "Adeyemi",
    "Mensah", "Bailey", "Foster", "Hayes", "Price", "Bennett", "Russell", "Brooks", "Sanders",
    "Park", "Lee", "Wong", "Das", "Iyer", "Byrne", "Doyle", "Fischer",
];
const EMAIL_DOMAINS: &[&str] = &["example.com", "example.org", "example.net"];
const COMPANIES: &[&str] = &[
    "Northwind Studio",
    "Juniper & Oak Legal",
    "Bluefin Analytics",
    "Harbor Dental Group",
    "Maple Street Bakery",
    "Copperline Logistics",
    "Fernhill Architects",
    "Quarry Lane Vets",
];
const TITLES: &[&str] = &[
    "Office Manager",
    "Founder",
    "IT Administrator",
    "Operations Lead",
    "Owner",
    "Practice Manager",
];
const AGENTS: &[&str] = &[
    "Maya",
    "Jordan",
    "Priscilla",
    "Tom",
    "Aiden",
    "Rachel",
    "Sam",
    "Harriet",
    "Kwame",
    "Lucia",
    "Ben",
    "Ines",
    "Connor",
    "Dev",
    "Alisha",
    "Marco",
    "Greta",
    "Tunde",
    "Hollie",
    "Raj",
];
const COMPETITORS: &[&str] = &[
    "Nimbus Broadband",
    "Clearline Fiber",
    "Orbitel",
    "Swiftlink",
    "Hearth Mobile",
];

/// (city, ISO country, UTC offset in hours, weight, UK drama-range landline prefix).
const CITIES: &[(&str, &str, i64, f64, &str)] = &[
    ("Austin", "US", -6, 5.0, ""),
    ("Denver", "US", -7, 5.0, ""),
    ("Portland", "US", -8, 5.0, ""),
    ("Columbus", "US", -5, 5.0, ""),
    ("Raleigh", "US", -5, 5.0, ""),
    ("Phoenix", "US", -7, 5.0, ""),
    ("Minneapolis", "US", -6, 5.0, ""),
    ("Sacramento", "US", -8, 5.0, ""),
    ("Pittsburgh", "US", -5, 5.0, ""),
    ("Tampa", "US", -5, 5.0, ""),
    ("Madison", "US", -6, 5.0, ""),
    ("Boise", "US", -7, 5.0, ""),
    ("Richmond", "US", -5, 5.0, ""),
    ("Kansas City", "US", -6, 5.0, ""),
    ("Albuquerque", "US", -7, 5.0, ""),
    ("Spokane", "US", -8, 5.0, ""),
    ("Toronto", "CA", -5, 3.0, ""),
    ("Calgary", "CA", -7, 3.0, ""),
    ("Halifax", "CA", -4, 3.0, ""),
    ("Ottawa", "CA", -5, 3.0, ""),
    ("Winnipeg", "CA", -6, 3.0, ""),
    ("Manchester", "GB", 0, 4.0, "+44 161 496 0"),
    ("Leeds", "GB", 0, 4.0, "+44 113 496 0"),
    ("Bristol", "GB", 0, 4.0, "+44 117 496 0"),
    ("Glasgow", "GB", 0, 4.0, "+44 141 496 0"),
    ("Cardiff", "GB", 0, 4.0, "+44 29 2018 0"),
    ("Nottingham", "GB", 0, 4.0, "+44 115 496 0"),
];

/// (plan id, display name, monthly price in cents, headline speed in Mbps, weight).
const PLANS: &[(&str, &str, u32, u32, f64)] = &[
    ("fiber-100", "Fiber 100", 4500, 100, 20.0),
    ("fiber-500", "Fiber 500", 6500, 500, 30.0),
    ("fiber-1000", "Fiber 1000", 8500, 1000, 15.0),
    ("mobile-basic", "Mobile Basic", 2000, 100, 12.0),
    ("mobile-unlimited", "Mobile Unlimited", 4500, 300, 13.0),
    ("bundle-plus", "Bundle Plus", 11000, 500, 10.0),
];

/// (product id, name, price in cents, category).
const PRODUCTS: &[(&str, &str, u32, &str)] = &[
    ("bw-rtr-6e", "Wi-Fi 6E Router", 12900, "networking"),
    ("bw-mesh-2", "Mesh Extender (2-pack)", 14900, "networking"),
    ("bw-hotspot", "5G Mobile Hotspot", 8900, "mobile"),
    ("bw-door", "Smart Video Doorbell", 9900, "smart-home"),
    ("bw-cam-in", "Indoor Security Camera", 5900, "smart-home"),
    (
        "bw-cam-out",
        "Outdoor Floodlight Camera",
        17900,
        "smart-home",
    ),
    ("bw-plug-2", "Smart Plug (2-pack)", 2900, "smart-home"),
    ("bw-thermo", "Smart Thermostat", 14900, "smart-home"),
    ("bw-lock", "Smart Door Lock", 19900, "smart-home"),
    ("bw-leak", "Leak Sensor Kit", 4900, "smart-home"),
    ("bw-tvbox", "Streaming TV Box", 6900, "entertainment"),
    ("bw-charge", "Fast Wireless Charger", 3900, "accessories"),
];

/// (page name, path, title, weight).
const PAGES: &[(&str, &str, &str, f64)] = &[
    (
        "Home",
        "/",
        "Brightwave | Internet, Mobile & Smart Home",
        20.0,
    ),
    ("Pricing", "/pricing", "Plans & Pricing", 10.0),
    (
        "Coverage Map",
        "/coverage",
        "Check Coverage at Your Address",
        6.0,
    ),
    ("Support", "/support", "Help & Support", 10.0),
    ("Checkout", "/checkout", "Checkout", 2.0),
    ("Fiber Plans", "/plans/fiber", "Fiber Broadband Plans", 6.0),
    ("Mobile Plans", "/plans/mobile", "Mobile Plans", 5.0),
    ("Shop", "/shop", "Shop Devices", 5.0),
    ("Smart Home", "/shop/smart-home", "Smart Home Devices", 4.0),
    ("Account", "/account", "My Account", 14.0),
    ("Bill", "/account/bill", "Your Bill Explained", 10.0),
    ("Outage Status", "/status", "Service Status", 4.0),
    (
        "Router Setup Guide",
        "/support/router-setup",
        "Setting Up Your Router",
        3.0,
    ),
    (
        "Moving Home",
        "/support/moving",
        "Moving Home with Brightwave",
        2.0,
    ),
    ("Refer a Friend", "/refer", "Refer a Friend", 1.0),
];
/// Indices into PAGES for pre-signup landing visits.
const LANDING: &[usize] = &[0, 0, 1, 2, 5, 6, 8];
const PAGE_SUPPORT: usize = 3;
const PAGE_CHECKOUT: usize = 4;
const PAGE_SHOP: usize = 7;

/// (screen name, weight).
const SCREENS: &[(&str, f64)] = &[
    ("Home", 20.0),
    ("Usage", 18.0),
    ("Bill", 14.0),
    ("Speed Test", 8.0),
    ("Devices", 8.0),
    ("Plan", 6.0),
    ("Support", 6.0),
    ("Wi-Fi Settings", 6.0),
    ("Rewards", 4.0),
    ("Notifications", 4.0),
    ("Smart Home", 6.0),
];

/// (campaign id, campaign name, subject line, landing page index).
const CAMPAIGNS: &[(&str, &str, &str, usize)] = &[
    (
        "cmp-bill-ready",
        "Bill ready",
        "Your latest Brightwave bill is ready",
        10,
    ),
    (
        "cmp-fiber-upgrade",
        "Fiber 1000 upgrade",
        "Go faster for less this month",
        5,
    ),
    (
        "cmp-smart-home-sale",
        "Smart home sale",
        "Up to 30% off smart home kits",
        8,
    ),
    (
        "cmp-network-works",
        "Network upgrade",
        "We're upgrading the network near you",
        11,
    ),
    (
        "cmp-wifi-tips",
        "Wi-Fi tips",
        "Five easy ways to better Wi-Fi at home",
        12,
    ),
    (
        "cmp-referral",
        "Refer a friend",
        "Give a month free, get a month free",
        14,
    ),
    (
        "cmp-unlimited",
        "Mobile Unlimited offer",
        "Unlimited data, now with EU roaming",
        6,
    ),
];

const HOUR_WEIGHTS: [f64; 24] = [
    1.0, 0.6, 0.4, 0.3, 0.3, 0.8, 2.5, 5.0, 7.5, 8.5, 9.0, 9.0, 10.0, 9.5, 9.0, 9.0, 9.0, 10.0,
    11.0, 12.0, 12.0, 10.0, 6.0, 2.5,
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
const FEE_NAMES: &[&str] = &[
    "late payment fee",
    "equipment rental fee",
    "installation charge",
    "paper billing fee",
    "roaming charge",
    "early upgrade fee",
];
const REFUND_WINDOWS: &[&str] = &[
    "3-5 business days",
    "2-3 business days",
    "up to 5 working days",
];

// ------------------------------------------------------------ conversation text

struct Tone {
    weight: f64,
    openers: &'static [&'static str],
    asks: &'static [&'static str],
    reactions: &'static [&'static str],
    empathy: &'static [&'static str],
}

const DELIGHTED: usize = 0;
const ANGRY: usize = 2;
const ANXIOUS: usize = 3;
const NEUTRAL: usize = 4;

const TONES: [Tone; 5] = [
    Tone {
        weight: 12.0,
        openers: &[
            "First of all, I've been really happy with Brightwave since I joined.",
            "Loving the {plan} plan so far, it's been great!",
            "Quick one, and honestly the service has been brilliant otherwise.",
            "You've always been great, so I'm sure this is an easy fix!",
        ],
        asks: &[
            "No rush at all, thanks so much!",
            "Thanks in advance, you're always helpful.",
            "Appreciate it, have a lovely day!",
        ],
        reactions: &[
            "Amazing, thank you {agent}! That was so quick.",
            "Perfect, that's exactly what I needed. Thanks {agent}!",
            "Brilliant - really appreciate the help.",
            "You're a star, {agent}. Thank you!",
        ],
        empathy: &[
            "Thanks so much for the kind words, {first}, that really made my day!",
            "That's lovely to hear, {first} - let's get this sorted for you.",
            "Happy to help, {first}, and thanks for being with us.",
        ],
    },
    Tone {
        weight: 20.0,
        openers: &[
            "I'm a bit confused and hoping someone can explain.",
            "Sorry if this is a silly question but I can't figure this out.",
            "I've read the help pages and I'm still not sure what's going on.",
            "Not sure if I'm reading this right.",
        ],
        asks: &[
            "Can someone explain what I'm supposed to do?",
            "Could you walk me through it?",
            "Is this normal or have I done something wrong?",
        ],
        reactions: &[
            "Ok, I think I get it now - so I don't need to do anything else?",
            "Right, that makes more sense. Thanks {agent}.",
            "Thanks, so just to double-check, it sorts itself out from here?",
        ],
        empathy: &[
            "Not a silly question at all, {first} - it is confusing, so let me clarify.",
            "Good question, {first}. I'll explain exactly what's happening.",
            "I can see why that's unclear, {first}, sorry about that.",
        ],
    },
    Tone {
        weight: 20.0,
        openers: &[
            "I'm honestly furious about this.",
            "This is completely unacceptable.",
            "I am really fed up with Brightwave right now.",
            "Frankly I expected a lot better than this.",
        ],
        asks: &[
            "Sort it out today please.",
            "I want this fixed now, not next week.",
            "I expect a proper answer this time.",
        ],
        reactions: &[
            "Fine. I'll wait, but if this happens again I'm leaving.",
            "Ok. I'll hold you to that, {agent}.",
            "That's the least you could do. I'll check back tomorrow.",
        ],
        empathy: &[
            "I'm really sorry, {first} - that's not the experience you should be getting from us.",
            "You have every right to be frustrated, {first}, and I apologise.",
            "I completely understand your frustration, {first}. Let me take ownership of this.",
        ],
    },
    Tone {
        weight: 15.0,
        openers: &[
            "I'm really worried about this and not sure what to do.",
            "Sorry to bother you but this is stressing me out.",
            "I'm panicking a bit here, to be honest.",
            "I'm quite anxious about this so I'd appreciate a quick reply.",
        ],
        asks: &[
            "Please can someone let me know as soon as possible?",
            "Can you tell me it's going to be ok?",
            "I really need to know what happens next.",
        ],
        reactions: &[
            "Thank you so much, that's a huge weight off my mind.",
            "Ok, that helps a lot. Thanks for being so patient, {agent}.",
            "Phew. Thank you - I was really worried.",
        ],
        empathy: &[
            "I can hear how worrying this is, {first}, and I'm going to help you right now.",
            "Please don't worry, {first} - I'll make sure this gets sorted.",
            "I completely understand why that's stressful, {first}. Here's what I'm doing.",
        ],
    },
    Tone {
        weight: 33.0,
        openers: &[
            "",
            "Quick question about my account.",
            "Hoping you can help with something.",
            "I need some help please.",
        ],
        asks: &[
            "Thanks.",
            "Could you look into it?",
            "Let me know, thanks.",
            "What are the next steps?",
        ],
        reactions: &[
            "Great, thanks for your help.",
            "Ok, thanks {agent}.",
            "Got it, appreciate it.",
            "Sounds good.",
        ],
        empathy: &[
            "Thanks for getting in touch, {first}.",
            "Thanks for reaching out, {first} - happy to help.",
            "Thanks for the details, {first}.",
        ],
    },
];

struct Topic {
    key: &'static str,
    /// 0 billing, 1 delivery, 2 outage, 3 cancellation, 4 account.
    family: usize,
    weight: f64,
    subjects: &'static [&'static str],
    problems: &'static [&'static str],
    details: &'static [&'static str],
    bot_q: &'static [&'static str],
    answers: &'static [&'static str],
    actions: &'static [&'static str],
    followups: &'static [&'static str],
}

const TOPICS: [Topic; 10] = [
    Topic {
        key: "billing-double-charge",
        family: 0,
        weight: 9.0,
        subjects: &["Charged twice for my {month} bill", "Duplicate payment of {amount}", "Double charge on card ending {last4}"],
        problems: &[
            "I've been charged {amount} twice for my {month} bill.",
            "My bank statement shows two payments of {amount} to Brightwave on {date}.",
            "The {month} payment went out twice from the card ending {last4}.",
            "Looks like my autopay ran twice this month - {amount} both times.",
        ],
        details: &[
            "My account only shows one bill, so one of them must be a mistake.",
            "I've got a screenshot of the statement if you need it.",
            "Nothing on my plan changed, so I don't understand why.",
            "It's a joint account so my partner spotted it first.",
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
        key: "billing-unexpected-fee",
        family: 0,
        weight: 7.0,
        subjects: &["What is the {fee} {fee_name} on my bill?", "Unexpected {fee_name}", "Bill higher than usual in {month}"],
        problems: &[
            "My bill this month has a {fee_name} of {fee} that nobody told me about.",
            "There's a {fee} charge labelled '{fee_name}' and I have no idea what it's for.",
            "My {month} bill came to {amount} instead of the usual - looks like a {fee_name} was added.",
            "I was never told about a {fee_name}, but there's {fee} of it on my latest bill.",
        ],
        details: &[
            "I've paid on time every single month.",
            "When I signed up I was told there were no extra fees.",
            "I haven't changed anything on my {plan} plan.",
            "I checked my contract and can't see this mentioned anywhere.",
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
        key: "billing-refund",
        family: 0,
        weight: 6.0,
        subjects: &["Refund for returned {device}", "Still waiting for my refund", "Refund of {amount} not received"],
        problems: &[
            "I returned the {device} from order {order} on {date} and haven't seen the refund yet.",
            "I was promised a refund of {amount} after my return, but it still hasn't arrived.",
            "It's been {days} days since you confirmed my refund of {amount} and nothing has reached my account.",
            "I sent the {device} back within the 30-day window and still no refund.",
        ],
        details: &[
            "The tracking shows you received the parcel.",
            "I kept the drop-off receipt.",
            "The return confirmation email said 5 business days.",
            "I used the prepaid returns bag that came in the box.",
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
        key: "delivery-not-arrived",
        family: 1,
        weight: 8.0,
        subjects: &["Where is my {device}?", "Order {order} hasn't arrived", "Delivery missing - {order}"],
        problems: &[
            "My {device} (order {order}) was supposed to arrive on {date} and it still hasn't shown up.",
            "I ordered a {device} {days} days ago and the tracking hasn't moved since {date}.",
            "The tracking for {order} says delivered, but there's nothing here.",
            "I'm still waiting on the {device} from order {order}.",
        ],
        details: &[
            "I was home all day and nobody knocked.",
            "I've checked with the neighbours and the building's parcel room.",
            "The courier's tracking page just says 'in transit'.",
            "Without it I can't finish setting up my service.",
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
        key: "delivery-wrong-item",
        family: 1,
        weight: 5.0,
        subjects: &["Wrong item in order {order}", "Received a {wrong} instead of a {device}", "Order mix-up on {order}"],
        problems: &[
            "I ordered a {device} but the box had a {wrong} in it.",
            "Order {order} arrived today, but it's a {wrong}, not the {device} I paid for.",
            "You've sent me a {wrong}. I ordered a {device} on {date}.",
            "The packing slip says {device} but the item inside is a {wrong}.",
        ],
        details: &[
            "I haven't opened the inner packaging.",
            "I need the {device} before the install appointment.",
            "The order confirmation clearly says {device}.",
            "I've taken photos of everything.",
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
        key: "outage-internet-down",
        family: 2,
        weight: 12.0,
        subjects: &["Internet down in {city}", "No connection since {date}", "Service outage - still no internet"],
        problems: &[
            "My internet has been completely down since {date}.",
            "The router light has been flashing red for {days} days and nothing connects.",
            "We've had no connection at all since yesterday evening here in {city}.",
            "The internet kept dropping every few minutes and now it's gone completely.",
        ],
        details: &[
            "I've restarted the router three times and checked every cable.",
            "The status page says there's no outage in my area.",
            "I work from home so this is a big problem.",
            "The neighbours on Brightwave seem to be fine.",
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
        key: "outage-slow-speed",
        family: 2,
        weight: 10.0,
        subjects: &["Speeds way below {plan_speed} Mbps", "Slow internet in the evenings", "Paying for {plan}, getting {speed} Mbps"],
        problems: &[
            "I'm on {plan} but speed tests only show about {speed} Mbps.",
            "Every evening the internet slows to a crawl - around {speed} Mbps.",
            "I'm paying for {plan_speed} Mbps and getting {speed} Mbps at best.",
            "Video calls keep freezing and the app's speed test says {speed} Mbps.",
        ],
        details: &[
            "I've tested with a cable plugged straight into the router.",
            "It's been like this since about {date}.",
            "It's fine in the morning but useless after 6pm.",
            "I've already moved the router away from the TV.",
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
        key: "cancellation",
        family: 3,
        weight: 10.0,
        subjects: &["I want to cancel", "Cancel my {plan} plan", "Thinking about leaving Brightwave"],
        problems: &[
            "I'd like to cancel my {plan} plan.",
            "{competitor} has offered me a much better deal, so I'm planning to switch.",
            "I'm moving at the end of the month and want to cancel my service.",
            "Please tell me how to cancel - {competitor} is offering the same speed for less.",
        ],
        details: &[
            "I've been a customer for a few years.",
            "Their offer is about {fee} a month cheaper.",
            "Honestly the service has been fine, it's just the price.",
            "I don't want to pay an early termination fee.",
        ],
        bot_q: &["I can help with that. Is the reason price, service, or moving home?", "Sorry to hear you're thinking of leaving. What's prompting the change?"],
        answers: &["Price, mostly. {competitor} is cheaper.", "I'm moving house on {deadline}.", "A mix of price and the outages lately."],
        actions: &[
            "Before you go, I can offer {plan} at {fee} less per month for the next 12 months, with no new contract.",
            "If you're moving, we can transfer your service to the new address for free. Otherwise I've scheduled the cancellation for your final bill date with no early exit fee.",
            "I've matched the {competitor} offer: your bill drops by {fee} a month and I've added a {credit} loyalty credit. If you'd still like to cancel, just reply and I'll process it.",
        ],
        followups: &["Is the discount locked in for the full year?", "What happens to the router if I do cancel?"],
    },
    Topic {
        key: "howto-setup",
        family: 4,
        weight: 15.0,
        subjects: &["How do I set up my eSIM?", "Help setting up the {device}", "Can't pair my {device}"],
        problems: &[
            "I've got a new phone and can't work out how to move my eSIM across.",
            "I'm trying to set up the {device} and the app can't find it.",
            "How do I connect the {device} to my Brightwave account?",
            "The QR code for my eSIM doesn't seem to work.",
        ],
        details: &[
            "I followed the guide in the app up to step 3.",
            "The app just keeps spinning.",
            "My old phone has already been reset.",
            "I'm not very technical so simple steps would help.",
        ],
        bot_q: &["Happy to help with setup. Which device are you using?", "Are you setting this up in the Brightwave app or on the website?"],
        answers: &["In the app, on my phone.", "The {device}, bought on {date}.", "The app - it keeps timing out."],
        actions: &[
            "I've generated a fresh eSIM QR code and sent it to your email. Open Settings, add a mobile plan and scan it - it takes about two minutes.",
            "Hold the button on the back of the {device} for 10 seconds until the light pulses blue, then choose 'Add device' in the app. It should pair straight away.",
            "Your account had hit its device limit, which is why pairing failed. I've raised it, so try adding the {device} again now.",
        ],
        followups: &["Do I need to restart my phone afterwards?", "Will the old one stop working automatically?"],
    },
    Topic {
        key: "account-settings",
        family: 4,
        weight: 14.0,
        subjects: &["Can't log in to my account", "Change payment method", "Update details on my account"],
        problems: &[
            "I'm locked out of my account after too many password attempts.",
            "I need to change the card my bill is paid from - the one ending {last4} is expiring.",
            "How do I change the name on the account? I got married recently.",
            "I'd like to move my bill date to later in the month.",
        ],
        details: &[
            "The reset email never arrives.",
            "My old card expires this month.",
            "I'm the account holder.",
            "My pay date changed recently.",
        ],
        bot_q: &["I can help with account changes. For security, which city is the service address in?", "Can you confirm the email address on the account?"],
        answers: &["It's the email I'm writing from.", "The address is in {city}.", "{city}, same as always."],
        actions: &[
            "I've unlocked your account and sent a new reset link - it's valid for 30 minutes, and do check the spam folder just in case.",
            "You can update your card under Account > Billing > Payment method. I've also added a 7-day grace period so nothing fails in the meantime.",
            "Done - your bill date is now the 28th. Your next bill will include a small pro-rated adjustment.",
        ],
        followups: &["Is there a way to do this in the app next time?", "Will I get an email confirming the change?"],
    },
];

const GREETINGS: &[&str] = &["Hi!", "Hello.", "Hi there.", "Good morning.", "Hey."];
const EMAIL_GREETINGS: &[&str] = &[
    "Hi Brightwave team,",
    "Hello,",
    "Dear Brightwave,",
    "Hi support,",
    "To whom it may concern,",
];
const EMAIL_SIGNOFFS: &[&str] = &["Thanks,", "Thank you,", "Regards,", "Best,", "Cheers,"];
const AGENT_SIGNOFFS: &[&str] = &[
    "Kind regards,",
    "Best wishes,",
    "Thanks again,",
    "Warm regards,",
];
const SOCIAL_HANDLES: &[&str] = &["@Brightwave", "@BrightwaveHelp"];
const VOICE_OPENERS: &[&str] = &[
    "Yeah, hi, thanks for picking up.",
    "Hi, um, okay, so.",
    "Hello? Right, hi.",
    "Hi there, I've been on hold a while so I'll get straight to it.",
    "Oh hi, yes, okay.",
];
const VOICE_FILLERS: &[&str] = &["Okay.", "Right.", "Yeah, so.", "Hmm, okay.", "Mm-hm."];
const VOICE_AGENT_INTROS: &[&str] = &[
    "Thanks for calling Brightwave, you're speaking with {agent}.",
    "Hi, this is {agent} at Brightwave, thanks for holding.",
    "Good to speak with you, my name's {agent}.",
];
const VOICE_AGENT_FILLERS: &[&str] = &[
    "Okay, let me just pull up your account... right, I can see it.",
    "Bear with me one second... okay.",
    "Alright, I've got your details here.",
    "Let me have a look... yep.",
];
const BOT_GREETINGS: &[&str] = &[
    "Hi {first}! I'm Brighty, Brightwave's virtual assistant.",
    "Hello {first}, thanks for contacting Brightwave. I'm the virtual assistant.",
    "Hi there! You're chatting with Brighty, the Brightwave assistant.",
];
const AGENT_INTROS: &[&str] = &[
    "Hi {first}, this is {agent} from Brightwave.",
    "Hey {first}, {agent} here.",
    "Hello {first}, {agent} from the support team.",
];
const AGENT_HANDOFFS: &[&str] = &[
    "Hi {first}, {agent} here from the Brightwave team - I've picked up your chat.",
    "Thanks for waiting, {first}. This is {agent}, I'll take it from here.",
];
const AGENT_CLOSINGS: &[&str] = &[
    "Is there anything else I can help with today?",
    "Your reference is {ticket} if you need it.",
    "I'll keep {ticket} open until you confirm it's all working.",
    "Thanks for your patience, {first}.",
];
const AGENT_FINALS: &[&str] = &[
    "You're welcome, {first}! Have a great rest of your day.",
    "My pleasure - and yes, you'll get an email confirmation shortly.",
    "No problem at all. I've added notes under {ticket} so anyone on the team can pick this up.",
    "Glad I could help. Take care, {first}.",
    "Exactly right - nothing else needed on your side. Reach out any time.",
];
const ESC_HOLD: &[&str] = &[
    "Thanks for the details, {first}. I've passed this to the relevant team and they'll be in touch.",
    "Sorry for the trouble. I've raised ticket {ticket} and someone will update you within 48 hours.",
    "Thanks for your patience - I've added a note to your account and asked a specialist to review it.",
    "I understand. I've chased the team again and marked ticket {ticket} as a priority.",
];
const ESC_ANNOYED: &[&str] = &[
    "This is the second time I've had to contact you about this.",
    "I was told someone would get back to me and nobody has.",
    "Your last reply didn't actually fix anything.",
    "I've now spent over an hour on this across two conversations.",
];
const ESC_ANNOYED_ASK: &[&str] = &[
    "Can someone actually look at it this time?",
    "I need a real answer, not another ticket number.",
    "Please don't just copy and paste again.",
];
const ESC_FURIOUS: &[&str] = &[
    "This is the THIRD time I'm contacting you about exactly the same problem.",
    "I've been passed around for {days} days and I'm done being polite.",
    "Every time I get in touch I get a scripted reply and nothing changes.",
    "Three contacts, two tickets, zero fixes. Ridiculous.",
];
const ESC_THREAT: &[&str] = &[
    "If this isn't fixed today I'm cancelling and going to {competitor}.",
    "I want this escalated to a manager, and I want out of my contract with no exit fee.",
    "Honestly, I'm cancelling. {competitor} can have my money instead.",
    "Fix it today or close my account - I've already got a quote from {competitor}.",
];
const ESC_RECOVER: &[&str] = &[
    "{first}, I'm genuinely sorry - you should never have had to contact us three times. I've taken personal ownership of ticket {ticket}.",
    "You're completely right, {first}, and I apologise for the runaround. I'm a team lead and I'm handling this myself now.",
    "I've read through all of your previous messages, {first}, and I understand why you're angry.",
];
const ESC_CREDIT: &[&str] = &[
    "I've also added a {credit} credit to your account, and I'll call you on {eta} to confirm everything is resolved.",
    "On top of that I've applied a {credit} goodwill credit and waived any exit fees, whatever you decide.",
];
/// Anxious worries by family: billing, delivery, outage, other.
const ANX_LINES: [&[&str]; 4] = [
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
        "I'm worried I'll be hit with a fee I can't afford.",
        "I need this sorted before {deadline} or my payment will bounce.",
        "I'm scared I'll lose my phone number if this goes wrong.",
    ],
];
const ANX_REASSURE: [&[&str]; 4] = [
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
const ANX_FOLLOW: &[&str] = &[
    "Thank you. Just to be sure - it'll definitely be sorted before {deadline}?",
    "Ok. Is there anything I need to do in the meantime?",
    "Thanks {agent}. Sorry for panicking, it's just been a stressful week.",
];
const ANX_CONFIRM: &[&str] = &[
    "Yes - I've put {deadline} on ticket {ticket} and I'll check in with you on {eta} myself.",
    "Nothing needed from you, {first}. You'll get a text as soon as it's done, and you can reply here any time.",
    "No need to apologise at all, {first}. It's all in hand and I'll keep an eye on it until it's resolved.",
];

/// Survey comments: positive, mixed, negative.
const SURVEY_COMMENTS: [&[&str]; 3] = [
    &[
        "{agent} on the phone was fantastic and fixed it in minutes.",
        "Fast, reliable internet - no complaints at all.",
        "The app makes it really easy to keep an eye on my usage.",
        "Install was quick and the engineer left everything tidy.",
        "Great value compared to my last provider.",
        "{plan} has been rock solid for gaming and streaming.",
    ],
    &[
        "Speeds are good but the bill is confusing.",
        "Support was helpful once I got through, but the wait was long.",
        "Decent service, though the price keeps creeping up.",
        "Mostly fine. Wi-Fi is patchy upstairs.",
        "Took {days} days to sort out but got there in the end.",
    ],
    &[
        "Third outage this month. Not good enough.",
        "I was promised a callback that never happened.",
        "Paying for {plan} and not getting anywhere near it.",
        "Billing mistakes every other month, I'm looking elsewhere.",
        "Took {days} days to get a simple refund.",
        "Chat bot went round in circles and I gave up.",
    ],
];

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
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
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
        let hour = local.rem_euclid(DAY) / HOUR;
        let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7); // 1970-01-01 was a Thursday.
        let mut accept = HOUR_WEIGHTS[hour as usize] / 12.0;
        if weekday >= 5 {
            accept *= 0.75;
        }
        if rng.gen::<f64>() < accept {
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
    fn symbol(&self) -> &'static str {
        if self.country() == "GB" {
            "£"
        } else {
            "$"
        }
    }
}

/// A customer's profile, from its own ChaCha stream so `live_activity` can rebuild it cheaply.
fn profile(seed: u64, idx: usize, now_ms: i64) -> Profile {
    let mut rng = Rand::seed_from_u64(seed);
    rng.set_stream(PROFILE_STREAM + idx as u64);
    let first = pick(&mut rng, FIRST_NAMES);
    let last = pick(&mut rng, LAST_NAMES);
    let city = weighted_by(&mut rng, CITIES, |c| c.3);
    let plan = weighted_by(&mut rng, PLANS, |p| p.4);
    let (f, l) = (slug(first), slug(last));
    let initial: String = f.chars().take(1).collect();
    let n = idx * 7 + rng.gen_range(1..=7); // unique per customer
    let local = match rng.gen_range(0..4) {
        0 => format!("{f}.{l}{n}"),
        1 => format!("{f}{l}{n}"),
        2 => format!("{initial}{l}{n}"),
        _ => format!("{f}_{l}{n}"),
    };
    let email = format!("{local}@{}", pick(&mut rng, EMAIL_DOMAINS));
    let phone = match CITIES[city].4 {
        "" => format!("+1555{:07}", (idx as u64 * 7_919 + 1_234_567) % 10_000_000),
        _ if idx < 1000 => format!("+44 7700 900{:03}", (idx * 389) % 1000),
        landline => format!("{landline}{:03}", (idx * 389) % 1000),
    };
    let is_new = rng.gen_bool(0.3);
    let offset = if is_new {
        rng.gen_range(3 * DAY..88 * DAY)
    } else {
        rng.gen_range(70 * DAY..WINDOW - HOUR)
    };
    let start_ms = now_ms - offset;
    let ident_ms = start_ms + 15 * MINUTE;
    let tenure = rng.gen_range(100 * DAY..2200 * DAY);
    let created_ms = if is_new { ident_ms } else { now_ms - tenure };
    let company = rng
        .gen_bool(0.06)
        .then(|| (pick(&mut rng, COMPANIES), pick(&mut rng, TITLES)));
    // Log-normal activity (a few heavy users, many light ones), scaled by time as a customer.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let activity = (1.1 * z).exp() * (now_ms - ident_ms).max(0) as f64 / WINDOW as f64;
    let app_share = rng.gen_range(0.15..0.85);
    let ios = rng.gen_bool(0.55);
    let mood = [-1, 0, 1][weighted(&mut rng, &[20.0, 45.0, 35.0])];
    let anon = format!("anon-{:016x}", rng.gen::<u64>());
    Profile {
        idx,
        user_id: format!("u_{:06}", idx + 1),
        anon,
        first,
        last,
        email,
        phone,
        city,
        plan,
        created_ms,
        start_ms,
        ident_ms,
        company,
        activity,
        app_share,
        ios,
        mood,
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

fn finish(d: Draft, message_id: String, ms: i64, user_id: &str, anon: &str) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), Value::from(d.kind));
    m.insert("messageId".into(), Value::from(message_id));
    m.insert("timestamp".into(), Value::from(ts(ms)));
    if d.ids != Ids::Anon {
        m.insert("userId".into(), Value::from(user_id));
    }
    if d.ids != Ids::User {
        m.insert("anonymousId".into(), Value::from(anon));
    }
    if let Value::Object(body) = d.body {
        m.extend(body);
    }
    Value::Object(m)
}

fn track(p: &Profile, ms: i64, event: &str, properties: Value, context: Value) -> Draft {
    let body = json!({ "event": event, "properties": properties, "context": context });
    Draft {
        ms,
        cust: p.idx,
        ids: Ids::User,
        kind: "track",
        body,
    }
}

fn channel(c: &str) -> Value {
    json!({ "channel": c })
}

fn app_context(p: &Profile) -> Value {
    let (os, device) = if p.ios {
        ("iOS", "ios")
    } else {
        ("Android", "android")
    };
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
    Draft {
        ms,
        cust: p.idx,
        ids,
        kind: "page",
        body,
    }
}

fn product_json(p: &Profile, i: usize, quantity: u32) -> Value {
    let (id, name, cents, category) = PRODUCTS[i];
    json!({
        "product_id": id, "sku": id.to_uppercase(), "name": name, "price": money(cents),
        "quantity": quantity, "category": category, "currency": p.currency(),
    })
}

fn identify(p: &Profile, ms: i64) -> Draft {
    let (plan, ..) = PLANS[p.plan];
    let (city, country, ..) = CITIES[p.city];
    let mut traits = json!({
        "first_name": p.first, "last_name": p.last, "name": format!("{} {}", p.first, p.last),
        "email": p.email, "phone": p.phone, "plan": plan, "city": city, "country": country,
        "created_at": ts(p.created_ms),
    });
    if let (Some((company, title)), Value::Object(t)) = (p.company, &mut traits) {
        t.insert("company".into(), Value::from(company));
        t.insert("title".into(), Value::from(title));
    }
    let body = json!({ "traits": traits, "context": channel("web") });
    Draft {
        ms,
        cust: p.idx,
        ids: Ids::Both,
        kind: "identify",
        body,
    }
}

#[derive(Clone, Copy)]
enum Session {
    Web,
    Shop,
    App,
    Email,
    Chat,
    Voice,
    Survey,
    Renewal,
}

const SESSIONS: [Session; 8] = [
    Session::Web,
    Session::Shop,
    Session::App,
    Session::Email,
    Session::Chat,
    Session::Voice,
    Session::Survey,
    Session::Renewal,
];

fn session_weights(p: &Profile) -> [f64; 8] {
    [
        60.0 * (1.0 - p.app_share),
        3.5,
        60.0 * p.app_share,
        12.0,
        1.5,
        3.0,
        3.0,
        2.5,
    ]
}

/// Appends one session's events, in ascending time from `start`.
fn session(rng: &mut Rand, p: &Profile, kind: Session, start: i64, out: &mut Vec<Draft>) {
    let mut t = start;
    match kind {
        Session::Web => {
            let ids = if rng.gen_bool(0.2) {
                Ids::Both
            } else {
                Ids::User
            };
            for _ in 0..=weighted(rng, &[30.0, 25.0, 20.0, 15.0, 10.0]) {
                let i = weighted_by(rng, PAGES, |x| x.3);
                out.push(page(p, t, i, ids));
                if (i == PAGE_SHOP || PAGES[i].0 == "Smart Home") && rng.gen_bool(0.6) {
                    t += rng.gen_range(5_000..60_000);
                    out.push(product_viewed(rng, p, t));
                }
                t += rng.gen_range(8_000..240_000);
            }
        }
        Session::Shop => {
            out.push(page(p, t, PAGE_SHOP, Ids::User));
            let mut viewed = Vec::new();
            for _ in 0..rng.gen_range(1..=3) {
                t += rng.gen_range(10_000..120_000);
                let d = product_viewed(rng, p, t);
                viewed.push(d.body["properties"]["product_id"].clone());
                out.push(d);
            }
            if rng.gen_bool(0.65) {
                t += rng.gen_range(30_000..300_000);
                out.push(page(p, t, PAGE_CHECKOUT, Ids::User));
                t += rng.gen_range(40_000..400_000);
                let mut products = Vec::new();
                let mut cents = 0;
                for (i, prod) in PRODUCTS.iter().enumerate() {
                    if viewed.iter().any(|v| v == prod.0)
                        && (products.is_empty() || rng.gen_bool(0.4))
                    {
                        let qty = if prod.3 == "smart-home" && rng.gen_bool(0.2) {
                            2
                        } else {
                            1
                        };
                        cents += prod.2 * qty;
                        products.push(product_json(p, i, qty));
                    }
                }
                let props = json!({
                    "order_id": format!("BW-{}", rng.gen_range(1_000_000..10_000_000)),
                    "revenue": money(cents), "currency": p.currency(), "products": products,
                    "shipping_method": pick(rng, &["standard", "express", "click-and-collect"]),
                });
                out.push(track(p, t, "Order Completed", props, channel("purchase")));
            }
        }
        Session::App => {
            let props = json!({ "version": APP_VERSION, "from_background": rng.gen_bool(0.4) });
            out.push(track(p, t, "App Opened", props, app_context(p)));
            for _ in 0..rng.gen_range(1..=4) {
                t += rng.gen_range(3_000..90_000);
                let name = SCREENS[weighted_by(rng, SCREENS, |s| s.1)].0;
                let body = json!({ "name": name, "properties": { "name": name }, "context": app_context(p) });
                out.push(Draft {
                    ms: t,
                    cust: p.idx,
                    ids: Ids::User,
                    kind: "screen",
                    body,
                });
                if name == "Speed Test" {
                    t += rng.gen_range(15_000..40_000);
                    out.push(track(
                        p,
                        t,
                        "Speed Test Run",
                        speed_props(rng, p),
                        app_context(p),
                    ));
                }
            }
        }
        Session::Email => {
            let (id, name, subject, landing) = pick(rng, CAMPAIGNS);
            let props =
                json!({ "campaign_id": id, "campaign_name": name, "email_subject": subject });
            out.push(track(p, t, "Email Opened", props.clone(), channel("email")));
            if rng.gen_bool(0.3) {
                t += rng.gen_range(5_000..120_000);
                let mut props = props;
                props["link_url"] =
                    Value::from(format!("{SITE}{}?utm_campaign={id}", PAGES[landing].1));
                out.push(track(p, t, "Email Link Clicked", props, channel("email")));
                if rng.gen_bool(0.5) {
                    out.push(page(p, t + rng.gen_range(1_000..6_000), landing, Ids::Both));
                }
            }
        }
        Session::Chat => {
            out.push(page(p, t, PAGE_SUPPORT, Ids::User));
            t += rng.gen_range(10_000..90_000);
            let props = json!({
                "topic": TOPICS[weighted_by(rng, &TOPICS, |x| x.weight)].key,
                "entry_point": pick(rng, &["support_page", "account", "checkout"]),
            });
            out.push(track(p, t, "Chat Started", props, channel("chat")));
        }
        Session::Voice => {
            let family = weighted(rng, &[30.0, 10.0, 35.0, 10.0, 15.0]);
            let secs = rng.gen_range(90..1500);
            out.push(call_completed(rng, p, t, family, secs, "resolved"));
        }
        Session::Survey => {
            let trigger = pick(rng, &["quarterly", "post-install", "in-app"]);
            out.push(survey(rng, p, t, p.mood, trigger, false));
        }
        Session::Renewal => {
            let (plan, _, cents, ..) = PLANS[p.plan];
            let props = json!({
                "plan": plan, "amount": money(cents), "currency": p.currency(),
                "billing_period": "monthly", "payment_method": pick(rng, &["card", "card", "direct_debit", "paypal"]),
            });
            out.push(track(
                p,
                t,
                "Subscription Renewed",
                props,
                channel("purchase"),
            ));
        }
    }
}

fn product_viewed(rng: &mut Rand, p: &Profile, ms: i64) -> Draft {
    let mut d = track(
        p,
        ms,
        "Product Viewed",
        product_json(p, rng.gen_range(0..PRODUCTS.len()), 1),
        channel("web"),
    );
    if let Some(props) = d.body["properties"].as_object_mut() {
        props.remove("quantity");
    }
    d
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
    let mut down = f64::from(mbps) * factor;
    if p.mood < 0 && rng.gen_bool(0.3) {
        down *= 0.3;
    }
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
    let connection = if mobile {
        "5g"
    } else if wired {
        "ethernet"
    } else {
        "wifi"
    };
    json!({ "download_mbps": round1(down), "upload_mbps": round1(up), "latency_ms": latency, "connection": connection })
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
    track(p, ms, "Call Completed", props, channel("voice"))
}

fn survey(rng: &mut Rand, p: &Profile, ms: i64, mood: i8, trigger: &str, csat_only: bool) -> Draft {
    let nps = !csat_only && rng.gen_bool(0.6);
    let noisy = rng.gen_bool(0.1);
    let score: u8 = match (nps, noisy, mood) {
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
    let mut props = Map::new();
    props.insert(
        "survey".into(),
        Value::from(if nps { "nps" } else { "csat" }),
    );
    props.insert("score".into(), Value::from(score));
    props.insert("trigger".into(), Value::from(trigger));
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
        props.insert("comment".into(), Value::from(comment));
    }
    track(
        p,
        ms,
        "Survey Responded",
        Value::Object(props),
        channel("survey"),
    )
}

/// All of one customer's regular activity: anonymous visits, identify, optional plan change, sessions.
fn customer_events(rng: &mut Rand, p: &Profile, budget: usize, now_ms: i64, out: &mut Vec<Draft>) {
    let before = out.len();
    let mut t = p.start_ms;
    for _ in 0..rng.gen_range(2..=4) {
        out.push(page(p, t, pick(rng, LANDING), Ids::Anon));
        t += rng.gen_range(20_000..180_000);
    }
    out.push(identify(p, p.ident_ms));
    let (lo, hi) = (p.ident_ms + 10 * MINUTE, now_ms - HOUR);
    if rng.gen_bool(0.15) && p.ident_ms + 5 * DAY < now_ms - 12 * HOUR {
        let when = rng.gen_range(p.ident_ms + 5 * DAY..now_ms - 12 * HOUR);
        let to = (p.plan + rng.gen_range(1..PLANS.len())) % PLANS.len();
        let (from, to) = (PLANS[p.plan], PLANS[to]);
        let change = if to.2 > from.2 {
            "upgrade"
        } else {
            "downgrade"
        };
        let delta = (f64::from(to.2) - f64::from(from.2)) / 100.0;
        let props =
            json!({ "previous_plan": from.0, "plan": to.0, "change": change, "mrr_delta": delta });
        out.push(track(p, when, "Plan Changed", props, channel("purchase")));
        let body = json!({ "traits": { "plan": to.0 }, "context": channel("web") });
        out.push(Draft {
            ms: when + 1_500,
            cust: p.idx,
            ids: Ids::User,
            kind: "identify",
            body,
        });
    }
    if lo >= hi {
        return;
    }
    let tz = CITIES[p.city].2;
    let weights = session_weights(p);
    let mut guard = 0;
    while out.len() - before < budget && guard < budget * 4 {
        guard += 1;
        let start = sample_time(rng, lo, hi, tz);
        let mark = out.len();
        let kind = SESSIONS[weighted(rng, &weights)];
        session(rng, p, kind, start, out);
        while out.len() > mark && out.last().is_some_and(|d| d.ms > now_ms) {
            out.pop();
        }
    }
}

// -------------------------------------------------------------- conversations

/// Concrete details shared by all messages of one conversation.
struct Ctx {
    first: &'static str,
    agent: &'static str,
    order: String,
    amount: String,
    fee: String,
    fee_name: &'static str,
    credit: String,
    device: &'static str,
    wrong: &'static str,
    date: String,
    deadline: String,
    eta: String,
    month: String,
    days: i64,
    speed: u32,
    plan: &'static str,
    plan_speed: u32,
    competitor: &'static str,
    ticket: String,
    last4: String,
    city: &'static str,
    refund_window: &'static str,
}

impl Ctx {
    fn new(rng: &mut Rand, p: &Profile, ms: i64) -> Ctx {
        let sym = p.symbol();
        let cash = |c: u32| format!("{sym}{}.{:02}", c / 100, c % 100);
        let d = rng.gen_range(0..PRODUCTS.len());
        let w = (d + rng.gen_range(1..PRODUCTS.len())) % PRODUCTS.len();
        let days = rng.gen_range(2..=9);
        let plan_speed = PLANS[p.plan].3;
        Ctx {
            first: p.first,
            agent: pick(rng, AGENTS),
            order: format!("BW-{}", rng.gen_range(1_000_000..10_000_000)),
            amount: cash(rng.gen_range(2_999..18_999)),
            fee: cash(rng.gen_range(500..4_500)),
            fee_name: pick(rng, FEE_NAMES),
            credit: cash(pick(rng, &[1_000, 1_500, 2_000, 2_500, 3_000, 5_000])),
            device: PRODUCTS[d].1,
            wrong: PRODUCTS[w].1,
            date: at(ms - days * DAY).format("%B %-d").to_string(),
            deadline: at(ms + rng.gen_range(3..=7) * DAY)
                .format("%A, %B %-d")
                .to_string(),
            eta: at(ms + rng.gen_range(1..=2) * DAY)
                .format("%A %B %-d")
                .to_string(),
            month: at(ms - 20 * DAY).format("%B").to_string(),
            days,
            speed: rng.gen_range((plan_speed / 25).max(2)..(plan_speed / 3).max(3)),
            plan: PLANS[p.plan].1,
            plan_speed,
            competitor: pick(rng, COMPETITORS),
            ticket: format!("CS-{}", rng.gen_range(100_000..1_000_000)),
            last4: format!("{:04}", rng.gen_range(0..10_000)),
            city: CITIES[p.city].0,
            refund_window: pick(rng, REFUND_WINDOWS),
        }
    }

    fn put(&self, key: &str, out: &mut String) {
        let number: String;
        let s: &str = match key {
            "first" => self.first,
            "agent" => self.agent,
            "order" => &self.order,
            "amount" => &self.amount,
            "fee" => &self.fee,
            "fee_name" => self.fee_name,
            "credit" => &self.credit,
            "device" => self.device,
            "wrong" => self.wrong,
            "date" => &self.date,
            "deadline" => &self.deadline,
            "eta" => &self.eta,
            "month" => &self.month,
            "plan" => self.plan,
            "competitor" => self.competitor,
            "ticket" => &self.ticket,
            "last4" => &self.last4,
            "city" => self.city,
            "refund_window" => self.refund_window,
            "days" => {
                number = self.days.to_string();
                &number
            }
            "speed" => {
                number = self.speed.to_string();
                &number
            }
            "plan_speed" => {
                number = self.plan_speed.to_string();
                &number
            }
            _ => {
                out.push('{');
                out.push_str(key);
                "}"
            }
        };
        out.push_str(s);
    }

    /// Replaces `{key}` placeholders in a template.
    fn fill(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            match after.find('}') {
                Some(j) => {
                    self.put(&after[..j], &mut out);
                    rest = &after[j + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn pick(&self, rng: &mut Rand, xs: &[&str]) -> String {
        self.fill(pick(rng, xs))
    }
}

/// The customer's opening message body (without channel framing).
fn first_body(rng: &mut Rand, c: &Ctx, ch: &str, t: &Topic, tone: usize, anxious: bool) -> String {
    let tn = &TONES[tone];
    let mut parts = Vec::new();
    if tone != NEUTRAL || rng.gen_bool(0.6) {
        parts.push(c.pick(rng, tn.openers));
    }
    parts.push(c.pick(rng, t.problems));
    if rng.gen_bool(if matches!(ch, "sms" | "social") {
        0.3
    } else {
        0.65
    }) {
        parts.push(c.pick(rng, t.details));
    }
    if anxious {
        parts.push(c.pick(rng, ANX_LINES[t.family.min(3)]));
    }
    if rng.gen_bool(0.7) {
        parts.push(c.pick(rng, tn.asks));
    }
    join(parts)
}

/// Frames a customer message for its channel.
fn wrap_in(rng: &mut Rand, c: &Ctx, ch: &str, first: bool, tone: usize, body: String) -> String {
    match (ch, first) {
        ("email", true) => {
            let greet = if tone == ANGRY {
                "To whom it may concern,"
            } else {
                pick(rng, EMAIL_GREETINGS)
            };
            format!(
                "{greet}\n\n{body}\n\n{}\n{}",
                pick(rng, EMAIL_SIGNOFFS),
                c.first
            )
        }
        ("email", false) => format!("Hi {},\n\n{body}\n\n{}", c.agent, c.first),
        ("voice", true) => format!("{} {body}", pick(rng, VOICE_OPENERS)),
        ("voice", false) if rng.gen_bool(0.6) => format!("{} {body}", pick(rng, VOICE_FILLERS)),
        ("social", true) => format!("{} {body}", pick(rng, SOCIAL_HANDLES)),
        ("chat" | "sms", true) if tone != ANGRY && rng.gen_bool(0.6) => {
            format!("{} {body}", pick(rng, GREETINGS))
        }
        _ => body,
    }
}

/// Frames an agent message for its channel; `first` adds an introduction.
fn wrap_out(
    rng: &mut Rand,
    c: &Ctx,
    ch: &str,
    first: bool,
    after_bot: bool,
    body: String,
) -> String {
    match ch {
        "email" => format!(
            "Hi {},\n\n{body}\n\n{}\n{}\nBrightwave Customer Care",
            c.first,
            pick(rng, AGENT_SIGNOFFS),
            c.agent
        ),
        "voice" if first => join(vec![
            c.pick(rng, VOICE_AGENT_INTROS),
            pick(rng, VOICE_AGENT_FILLERS).to_string(),
            body,
        ]),
        "voice" if rng.gen_bool(0.5) => format!("{} {body}", pick(rng, VOICE_AGENT_FILLERS)),
        _ if first && after_bot => format!("{} {body}", c.pick(rng, AGENT_HANDOFFS)),
        _ if first => format!("{} {body}", c.pick(rng, AGENT_INTROS)),
        _ => body,
    }
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
    let w: Vec<f64> = TONES
        .iter()
        .enumerate()
        .map(|(i, t)| match (i, mood) {
            (ANGRY, -1) | (DELIGHTED, 1) => t.weight * 2.0,
            (DELIGHTED, -1) => t.weight * 0.3,
            (ANGRY, 1) => t.weight * 0.5,
            _ => t.weight,
        })
        .collect();
    weighted(rng, &w)
}

/// A new customer's opening message: (channel, subject, text).
fn opening(rng: &mut Rand, p: &Profile, ms: i64) -> (&'static str, String, String) {
    let ch = CHANNELS[weighted(rng, CHANNEL_WEIGHTS)];
    let topic = &TOPICS[weighted_by(rng, &TOPICS, |t| t.weight)];
    let tone = pick_tone(rng, p.mood);
    let c = Ctx::new(rng, p, ms);
    let subject = c.pick(rng, topic.subjects);
    let anxious = tone == ANXIOUS && rng.gen_bool(0.5);
    let body = first_body(rng, &c, ch, topic, tone, anxious);
    let text = wrap_in(rng, &c, ch, true, tone, body);
    (ch, subject, text)
}

/// A whole conversation starting at `start`; related events (chat, call, survey) go to `out`.
fn conversation(
    rng: &mut Rand,
    p: &Profile,
    start: i64,
    now_ms: i64,
    out: &mut Vec<Draft>,
) -> DemoConversation {
    let ch = CHANNELS[weighted(rng, CHANNEL_WEIGHTS)];
    let ti = weighted_by(rng, &TOPICS, |t| t.weight);
    let t = &TOPICS[ti];
    let tone = pick_tone(rng, p.mood);
    let tn = &TONES[tone];
    let c = Ctx::new(rng, p, start);
    let escalating = tone == ANGRY && t.family != 4 && rng.gen_bool(0.5);
    let anxious = tone == ANXIOUS && rng.gen_bool(0.7);
    let mut subject = c.pick(rng, t.subjects);
    if escalating && rng.gen_bool(0.5) {
        subject.push_str(pick(
            rng,
            &[" - still not fixed", " - 3rd time asking", " (URGENT)"],
        ));
    }
    let mut script: Vec<(&'static str, String)> = Vec::new();
    if escalating {
        let polite = join(vec![
            c.pick(rng, t.problems),
            c.pick(rng, t.details),
            c.pick(rng, TONES[NEUTRAL].asks),
        ]);
        script.push(("customer", wrap_in(rng, &c, ch, true, NEUTRAL, polite)));
        let hold = c.pick(rng, ESC_HOLD);
        script.push(("agent", wrap_out(rng, &c, ch, true, false, hold)));
        let annoyed = join(vec![
            c.pick(rng, ESC_ANNOYED),
            c.pick(rng, t.problems),
            c.pick(rng, ESC_ANNOYED_ASK),
        ]);
        script.push(("customer", wrap_in(rng, &c, ch, false, ANGRY, annoyed)));
        let hold = c.pick(rng, ESC_HOLD);
        script.push(("agent", wrap_out(rng, &c, ch, false, false, hold)));
        let furious = join(vec![
            c.pick(rng, ESC_FURIOUS),
            c.pick(rng, tn.openers),
            c.pick(rng, ESC_THREAT),
        ]);
        script.push(("customer", wrap_in(rng, &c, ch, false, ANGRY, furious)));
        let recover = join(vec![
            c.pick(rng, ESC_RECOVER),
            c.pick(rng, t.actions),
            c.pick(rng, ESC_CREDIT),
        ]);
        script.push(("agent", wrap_out(rng, &c, ch, false, false, recover)));
    } else {
        let body = first_body(rng, &c, ch, t, tone, anxious);
        script.push(("customer", wrap_in(rng, &c, ch, true, tone, body)));
        let bot = matches!(ch, "chat" | "sms" | "social") && rng.gen_bool(0.45);
        if bot {
            let q = join(vec![c.pick(rng, BOT_GREETINGS), c.pick(rng, t.bot_q)]);
            script.push(("bot", q));
            let answer = c.pick(rng, t.answers);
            script.push(("customer", wrap_in(rng, &c, ch, false, tone, answer)));
        }
        let mut reply = vec![c.pick(rng, tn.empathy)];
        if anxious {
            reply.push(c.pick(rng, ANX_REASSURE[t.family.min(3)]));
        }
        reply.push(c.pick(rng, t.actions));
        if rng.gen_bool(0.5) {
            reply.push(c.pick(rng, AGENT_CLOSINGS));
        }
        script.push(("agent", wrap_out(rng, &c, ch, true, bot, join(reply))));
        if anxious {
            let follow = c.pick(rng, ANX_FOLLOW);
            script.push(("customer", wrap_in(rng, &c, ch, false, tone, follow)));
            let confirm = c.pick(rng, ANX_CONFIRM);
            script.push(("agent", wrap_out(rng, &c, ch, false, false, confirm)));
        } else if rng.gen_bool(0.6) {
            let mut parts = vec![c.pick(rng, tn.reactions)];
            if rng.gen_bool(0.5) {
                parts.push(c.pick(rng, t.followups));
            }
            script.push(("customer", wrap_in(rng, &c, ch, false, tone, join(parts))));
            if rng.gen_bool(0.7) {
                let fin = c.pick(rng, AGENT_FINALS);
                script.push(("agent", wrap_out(rng, &c, ch, false, false, fin)));
            }
        }
    }
    // Timing: minutes apart (hours for email), shifted back if it would run past `now`.
    let mut times = Vec::with_capacity(script.len());
    let mut ms = start;
    for (k, (author, _)) in script.iter().enumerate() {
        if k > 0 {
            ms += gap(rng, ch, author);
        }
        times.push(ms);
    }
    let overshoot = ms - (now_ms - MINUTE);
    if overshoot > 0 {
        times.iter_mut().for_each(|x| *x -= overshoot);
    }
    let (first_ms, last_ms) = (times[0], times[times.len() - 1]);
    match ch {
        "chat" => {
            let props = json!({ "topic": t.key, "entry_point": pick(rng, &["support_page", "app", "account"]) });
            out.push(track(p, first_ms, "Chat Started", props, channel("chat")));
        }
        "voice" => {
            let outcome = if escalating { "escalated" } else { "resolved" };
            let secs = (last_ms - first_ms) / 1000 + rng.gen_range(30..120);
            out.push(call_completed(
                rng,
                p,
                (last_ms + 20_000).min(now_ms),
                t.family,
                secs,
                outcome,
            ));
        }
        _ => {}
    }
    let survey_at = last_ms + rng.gen_range(10 * MINUTE..2 * HOUR);
    if rng.gen_bool(0.35) && survey_at <= now_ms {
        let mood = match tone {
            ANGRY => -1,
            DELIGHTED => 1,
            _ => pick(rng, &[0, 1, 1]),
        };
        let trigger = if ch == "voice" {
            "post-call"
        } else {
            "post-conversation"
        };
        out.push(survey(rng, p, survey_at, mood, trigger, true));
    }
    let messages = script
        .into_iter()
        .zip(times)
        .map(|((author, text), ms)| DemoMessage {
            direction: if author == "customer" {
                "inbound"
            } else {
                "outbound"
            },
            author,
            text,
            at: at(ms),
        })
        .collect();
    DemoConversation {
        user_id: p.user_id.clone(),
        channel: ch,
        subject,
        messages,
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
        let share = if total_activity > 0.0 {
            p.activity / total_activity
        } else {
            0.0
        };
        let budget = MIN_EVENTS + (share * spare) as usize;
        customer_events(&mut rng, p, budget, now_ms, &mut drafts);
    }

    let mut conversations = Vec::new();
    for p in &profiles {
        if !rng.gen_bool(0.25) {
            continue;
        }
        let tz = CITIES[p.city].2;
        for _ in 0..=weighted(&mut rng, &[70.0, 22.0, 8.0]) {
            // The first few conversations are pinned to the last two days, so the demo looks live.
            let start = if conversations.len() < 4 {
                now_ms - rng.gen_range(3 * HOUR..44 * HOUR)
            } else {
                sample_time(&mut rng, p.ident_ms + HOUR, now_ms - HOUR, tz)
            };
            conversations.push(conversation(&mut rng, p, start, now_ms, &mut drafts));
        }
    }
    conversations.sort_by_key(|c| c.messages.first().map(|m| m.at));

    drafts.sort_by_key(|d| d.ms); // stable: ties keep generation order
    let events = drafts
        .into_iter()
        .enumerate()
        .map(|(n, d)| {
            let p = &profiles[d.cust];
            let ms = d.ms;
            finish(d, format!("demo-{seed}-{n}"), ms, &p.user_id, &p.anon)
        })
        .collect();
    DemoCompany {
        events,
        conversations,
    }
}

/// A few live events (1..=4) and sometimes (~1 in 5 calls) one new conversation message,
/// for a "trickle" of live activity at time `now`.
pub fn live_activity(seed: u64, tick: u64, customers: usize, now: DateTime<Utc>) -> LiveActivity {
    let now_ms = now.timestamp_millis();
    let mut rng = Rand::seed_from_u64(seed);
    rng.set_stream(LIVE_STREAM.wrapping_add(tick));
    let population = customers.max(1);
    let want = rng.gen_range(1..=4);
    let mut drafts = Vec::new();
    let mut people = Vec::new();
    while drafts.len() < want {
        let p = profile(seed, rng.gen_range(0..population), now_ms);
        let kind = [Session::Web, Session::App, Session::Email, Session::Shop]
            [weighted(&mut rng, &[40.0, 42.0, 12.0, 6.0])];
        session(&mut rng, &p, kind, now_ms, &mut drafts);
        people.push(p);
    }
    drafts.truncate(want);
    let n = drafts.len();
    let events = drafts
        .into_iter()
        .enumerate()
        .map(|(k, d)| {
            let p = people.iter().find(|p| p.idx == d.cust);
            let (user, anon) = p.map_or(("", ""), |p| (p.user_id.as_str(), p.anon.as_str()));
            let ms = now_ms - (n - 1 - k) as i64 * 250;
            finish(d, format!("live-{seed}-{tick}-{k}"), ms, user, anon)
        })
        .collect();
    let message = rng.gen_bool(0.2).then(|| {
        let p = profile(seed, rng.gen_range(0..population), now_ms);
        let (ch, subject, text) = opening(&mut rng, &p, now_ms);
        let msg = DemoMessage {
            direction: "inbound",
            author: "customer",
            text,
            at: now,
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
        let mut prev = String::new();
        for e in &d.events {
            let ts = e["timestamp"].as_str().unwrap();
            assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
            let t = DateTime::parse_from_rfc3339(ts).unwrap();
            assert!(t >= lo && t <= hi, "{ts} out of range");
            assert!(ts >= prev.as_str());
            prev = ts.to_string();
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
                assert!(e["anonymousId"].is_string());
                let domain = m.rsplit('@').next().unwrap();
                assert!(
                    ["example.com", "example.org", "example.net"].contains(&domain),
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
        let mut in_recent = 0;
        let mut inbound = Vec::new();
        let mut escalations = 0;
        for c in &d.conversations {
            assert!(c.messages.len() >= 2);
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
        assert!(
            inbound.iter().all(|t| !t.contains('{')),
            "unfilled placeholder"
        );
    }

    #[test]
    fn demo_live_activity() {
        let mut ids = HashSet::new();
        let mut messages = 0;
        for tick in 0..200 {
            let a = live_activity(3, tick, 2000, now());
            let b = live_activity(3, tick, 2000, now());
            assert_eq!(a.events, b.events);
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
                assert_eq!((m.direction, m.author), ("inbound", "customer"));
                assert!(!m.text.contains('{'));
            }
        }
        assert!((20..=70).contains(&messages), "{messages} messages");
    }
}
